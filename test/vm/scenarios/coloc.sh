# Scenario "coloc": batch co-location. A latency-sensitive service gets a
# request every 10 ms that takes 3 ms of CPU (vmload latency: requests are
# served in arrival order, none skipped, latency from arrival to the end of
# its work) and shares 2 CPUs with JOBS batch jobs, each a CPU burner in its
# own cgroup next to the service (as jobs started as units or pods of their
# own are): by weight the jobs together outweigh the service JOBS to one.
# The service runs alone, then in ROUNDS rounds of two legs each: next to
# the jobs without the governor, and next to them with the governor running
# a policy that makes every job SCHED_IDLE among its siblings (cpu.idle)
# and cuts its cpu.max while the service waits for CPU. Interleaving the
# legs makes the host's noise (TCG, a shared machine) hit both alike; the
# leg with the governor is measured once the squeeze has settled (the time
# before, when the service suffers until the governor acts, shows in the
# plot as "settle").
#
# Figures: the service's p99 alone, with batch and with batch + governor
# (medians over the rounds), the p99 cut, and the batch's throughput in
# both (counted only while the measured leg runs). Asserted: the squeeze
# happens and is given back on SIGTERM in every round, the median p99 with
# the governor is at most half the median without (issue 4), and the batch
# keeps at least 15% of its throughput. A plot of the service's latency,
# its CPU pressure and the batch's limits over time is coloc.svg.
set -u
. "$VMTEST/lib.sh"
require_governor

leg=${COLOC_LEG_SECONDS:-15}
rounds=${COLOC_ROUNDS:-3}
jobs=${COLOC_JOBS:-4}
work=${COLOC_WORK:-3ms}
period=${COLOC_PERIOD:-10ms}
cg_make coloc/service || fail "cgroup"
for ((j = 1; j <= jobs; j++)); do cg_make "coloc/job$j" || fail "cgroup"; done
SVC=$CG/coloc/service JOB1=$CG/coloc/job1

# batch_start NAME SECONDS: one burner per job; reports in burn_NAME_JOB.txt.
batch_start() {
	local j
	BATCH_PIDS=()
	for ((j = 1; j <= jobs; j++)); do
		cg_run "coloc/job$j" vmload burn -threads 1 -for "${2}s" >"$RESULTS/burn_$1_$j.txt"
		BATCH_PIDS+=($!)
	done
}
# batch_mark: count the jobs' work from now on. batch_stop: end them now.
batch_mark() { kill -USR1 "${BATCH_PIDS[@]}"; }
batch_stop() { kill "${BATCH_PIDS[@]}" 2>/dev/null; wait "${BATCH_PIDS[@]}"; }
# batch_ops NAME: the jobs' ops/s, summed.
batch_ops() { cat "$RESULTS"/burn_"$1"_*.txt | sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
# jobs_all FILE VALUE: every job's FILE reads VALUE.
jobs_all() {
	local j
	for ((j = 1; j <= jobs; j++)); do [ "$(cg_get "coloc/job$j" "$1")" = "$2" ] || return 1; done
}

# p99 FILE: the p99_us figure from a vmload latency report.
p99() { sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$1"; }
now() { date +%s.%N | cut -c1-14; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }
ms() { echo "$(($1 / 1000)).$(($1 % 1000 / 100))"; }

vmload watch -out "$RESULTS/watch.csv" -every 500ms \
	svc_cpu_some="$SVC/cpu.pressure" svc_cpu_full="$SVC/cpu.pressure#full" \
	job1_cpu_max="$JOB1/cpu.max" job1_cpu_idle="$JOB1/cpu.idle" &
watcher=$!
spans=()

# service NAME SECONDS: run the service in its cgroup for SECONDS, report
# in NAME.txt, trace in lat_NAME.csv; records a plot span.
service() {
	local t0
	t0=$(now)
	cg_run coloc/service vmload latency -period "$period" -work "$work" -for "${2}s" -trace "$RESULTS/lat_$1.csv" >"$RESULTS/$1.txt"
	wait $!
	spans+=("$1|$t0|$(now)")
	log "$1: $(cat "$RESULTS/$1.txt")"
}

service alone "$leg"
echo "round,p99_nogov_us,p99_gov_us,batch_ops_nogov,batch_ops_gov,all_idle,all_quarter_cpu,restored" >"$RESULTS/rounds.csv"
for ((r = 1; r <= rounds; r++)); do
	log "round $r: service with batch, no governor"
	batch_start "nogov_$r" "$((leg + 3))"
	sleep 1
	batch_mark
	service "nogov_$r" "$leg"
	batch_stop

	log "round $r: service with batch and the governor"
	batch_start "gov_$r" 120
	# --no-bpf: the policy reads PSI only, and the daemon then starts in a
	# second instead of 10-40 s of BPF loading under TCG.
	governor_start "$VMTEST/policies/coloc" --no-bpf
	# The service runs while the governor reacts to its pressure; the
	# measured leg starts once the squeeze has settled: every job is
	# SCHED_IDLE and its cpu.max at the policy's floor of a quarter CPU (at
	# most 40 s).
	cg_run coloc/service vmload latency -period "$period" -work "$work" -for 45s -trace "$RESULTS/lat_settle_$r.csv" >"$RESULTS/settle_$r.txt"
	s=$! t0=$(now)
	for ((i = 0; i < 400; i++)); do
		jobs_all cpu.idle 1 && jobs_all cpu.max "25000 100000" && break
		sleep 0.1
	done
	kill "$s" 2>/dev/null
	wait "$s"
	spans+=("settle_$r|$t0|$(now)")
	idle=no max=no
	jobs_all cpu.idle 1 && idle=yes
	jobs_all cpu.max "25000 100000" && max=yes
	log "round $r: squeeze settled after $((i / 10)) s: every job SCHED_IDLE $idle, at a quarter CPU $max (job1: cpu.idle $(cg_get coloc/job1 cpu.idle), cpu.max '$(cg_get coloc/job1 cpu.max)')"
	batch_mark
	service "gov_$r" "$leg"
	batch_stop
	governor_stop TERM
	restored=no
	jobs_all cpu.idle 0 && jobs_all cpu.max "max 100000" && restored=yes
	log "round $r: after SIGTERM every job restored: $restored (job1: cpu.idle $(cg_get coloc/job1 cpu.idle), cpu.max '$(cg_get coloc/job1 cpu.max)')"
	echo "$r,$(p99 "$RESULTS/nogov_$r.txt"),$(p99 "$RESULTS/gov_$r.txt"),$(batch_ops "nogov_$r"),$(batch_ops "gov_$r"),$idle,$max,$restored" >>"$RESULTS/rounds.csv"
	# Let the service's pressure averages fall before the next round.
	sleep 3
done
kill "$watcher"
wait "$watcher" 2>/dev/null
log "rounds:"
cat "$RESULTS/rounds.csv"

col() { csv_col "$RESULTS/rounds.csv" "$1"; }
a=$(p99 "$RESULTS/alone.txt")
wb=$(col p99_nogov_us | median) wg=$(col p99_gov_us | median)
o1=$(col batch_ops_nogov | median) o2=$(col batch_ops_gov | median)
cut10=$((wb * 10 / (wg > 0 ? wg : 1)))
share=$((o2 * 100 / (o1 > 0 ? o1 : 1)))

# One latency series over the whole run, for the plot.
{
	echo "t,p50_ms,p99_ms,max_ms,n"
	tail -q -n +2 "$RESULTS"/lat_*.csv | sort -n
} >"$RESULTS/latency.csv"
span_args=()
for s in "${spans[@]}"; do span_args+=(-span "$s"); done
vmload plot -out "$RESULTS/coloc.svg" \
	-title "coloc: service p99 alone $(ms "$a") ms, with batch $(ms "$wb") ms, with batch + governor $(ms "$wg") ms (medians of $rounds rounds)" \
	-series "Service request latency per second (ms)|p99|$RESULTS/latency.csv|p99_ms" \
	-series "Service request latency per second (ms)|p50|$RESULTS/latency.csv|p50_ms" \
	-series "Service CPU pressure, avg10 (%)|some|$RESULTS/watch.csv|svc_cpu_some" \
	-series "Service CPU pressure, avg10 (%)|full|$RESULTS/watch.csv|svc_cpu_full" \
	-series "Batch limits (job1 of $jobs)|cpu.max (CPUs)|$RESULTS/watch.csv|job1_cpu_max" \
	-series "Batch limits (job1 of $jobs)|cpu.idle|$RESULTS/watch.csv|job1_cpu_idle" \
	"${span_args[@]}" || log "plot failed"

summary "period=$period work=$work jobs=$jobs p99_ms alone=$(ms "$a") batch=$(ms "$wb") batch+gov=$(ms "$wg") p99_cut=$((cut10 / 10)).$((cut10 % 10))x batch_mops/s nogov=$((o1 / 1000000)) gov=$((o2 / 1000000)) batch_share=${share}% rounds=$rounds"
check "the governor made every job SCHED_IDLE (cpu.idle 1) in every round" test "$(col all_idle | sort -u)" = yes
check "and cut every job's cpu.max to a quarter CPU in every round" test "$(col all_quarter_cpu | sort -u)" = yes
check "and gave both back on SIGTERM in every round" test "$(col restored | sort -u)" = yes
check "the governor cut the service's median p99 at least in half ($(ms "$wb") -> $(ms "$wg") ms)" test "$cut10" -ge 20
check "the batch keeps at least 15% of its throughput (${share}%)" test "$share" -ge 15
check "the plot was drawn" test -s "$RESULTS/coloc.svg"
