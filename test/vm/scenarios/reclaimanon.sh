# Scenario "reclaimanon": proactive reclaim of anonymous memory under the
# shipped default policy (policies/default.hcl: batch.slice is reclaimed
# while its memory stall stays under 0.1%), in systemd's layout. A service
# in batch.slice holds 300 MiB hot + 500 MiB cold anonymous memory; 200 MiB
# of page cache (a file read twice, so it is on the active list) is charged
# to the slice too.
#
# The job works on its hot set without pause and logs its throughput (pages
# touched per second, vmload anon -ops); it is pinned to CPU 1.
#
# Leg 1, zram swap: the cold anonymous memory goes to swap; memory.current
# must come within 15% above hot + cache (575 MiB) within 5 minutes;
# memory some avg10 is above the policy's goal (0.1%) for no longer than
# one interval (6 s). Reported: the job's throughput while the governor
# reclaims against the 20 s before it started, the footprint every 20 s,
# requested and reclaimed bytes.
# Leg 2, no swap: the page cache is reclaimed, the anonymous memory is not
# touched; the governor backs off after at most 3 futile writes with one
# "nothing reclaimable" line and writes no more; once zram swap is added it
# resumes on its own.
set -u
. "$VMTEST/lib.sh"

require_governor
mountpoint -q /scratch || fail "scratch disk not mounted"
command -v systemd-run >/dev/null || skip "no systemd-run"
[ "$(cat /proc/1/comm)" = systemd ] || skip "systemd is not PID 1"

SLICE=$CGROOT/batch.slice
hot=$((300 << 20))
cache=$((200 << 20))
leg1_max=${RECLAIMANON_LEG1_SECONDS:-300}
leg2_time=${RECLAIMANON_LEG2_SECONDS:-80}
base_time=${RECLAIMANON_BASELINE_SECONDS:-20}
# RECLAIMANON_LEGS: dot-separated legs to run (swap, noswap, slowswap).
legs=${RECLAIMANON_LEGS:-swap.noswap}
leg() { case ".$legs." in *".$1."*) return 0 ;; esac; return 1; }
VMLOAD=$(command -v vmload)
GLOG=$RESULTS/governor.log

log "writing the 200 MiB cache file"
dd if=/dev/urandom of=/scratch/cache bs=1M count=200 status=none conv=fsync || fail "dd"

# start_gov: the daemon with no --config: the built-in default policy.
start_gov() {
	local n i
	n=$(grep -c 'governor: governing' "$GLOG" 2>/dev/null)
	# shellcheck disable=SC2086 # RECLAIMANON_GOVERNOR_ARGS: extra flags, split
	"$GOVERNOR" run --log-level debug ${RECLAIMANON_GOVERNOR_ARGS:-} >>"$GLOG" 2>&1 &
	GOV_PID=$!
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$GOV_PID" 2>/dev/null || { tail -20 "$GLOG"; fail "governor exited at start"; }
		[ "$(grep -c 'governor: governing' "$GLOG")" -gt "${n:-0}" ] && break
		sleep 0.1
	done
	[ "$i" -lt 1200 ] || fail "governor not governing after 120 s"
	grep -q 'using the built-in default policy' "$GLOG" || fail "governor did not use the built-in default policy"
	log "governor governing (pid $GOV_PID) with the built-in default policy"
}

# start_workload OPS: the batch service and its page cache; sets A0 (anon)
# and F0 (file) of batch.slice. The job logs its throughput to OPS.
start_workload() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	rm -f "$1"
	systemd-run --quiet --unit=reclaimanon-job --slice=batch.slice -p MemoryAccounting=yes -p CPUAffinity=1 \
		"$VMLOAD" anon -size 800M -hot 37.5 -ops "$1" || fail "systemd-run job"
	# Read twice so the pages are active; charged to batch.slice (the
	# unit's cgroup goes away, its page cache stays with the slice).
	# (systemd-run --wait needs the D-Bus system bus, which the guest lacks.)
	rm -f /run/reclaimanon-cached
	systemd-run --quiet --unit=reclaimanon-cache --slice=batch.slice -p MemoryAccounting=yes \
		sh -c 'cat /scratch/cache >/dev/null; cat /scratch/cache >/dev/null; touch /run/reclaimanon-cached' || fail "systemd-run cache"
	local i
	for ((i = 0; i < 600; i++)); do
		[ -f /run/reclaimanon-cached ] && break
		sleep 0.5
	done
	[ -f /run/reclaimanon-cached ] || fail "the page cache reader never finished"
	for ((i = 0; i < 300; i++)); do
		[ "$(keyed anon)" -ge $((790 << 20)) ] && break
		sleep 0.5
	done
	[ "$i" -lt 300 ] || fail "the job never allocated its 800 MiB (anon $(mib "$(keyed anon)") MiB)"
	sleep 2
	A0=$(keyed anon)
	F0=$(keyed file)
	log "workload ready: batch.slice memory.current $(mib "$(cat $SLICE/memory.current)") MiB, anon $(mib "$A0") MiB, file $(mib "$F0") MiB"
}

stop_workload() {
	systemctl stop reclaimanon-job.service 2>/dev/null
	systemctl reset-failed reclaimanon-job.service reclaimanon-cache.service 2>/dev/null
}

keyed() { awk -v k="$1" '$1 == k { print $2 }' "$SLICE/memory.stat"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ops_rate FILE FROM_MS TO_MS: the job's mean pages touched per second over
# the seconds logged in [FROM_MS, TO_MS) (the first second after FROM_MS is
# left out: it may straddle the change).
ops_rate() {
	awk -v a="$2" -v b="$3" '$1 >= a + 1000 && $1 < b { s += $2; n++ } END { if (n) printf "%.0f\n", s / n; else print 0 }' "$1"
}

# audit_check FROM: reads the governor log from line FROM and prints
# "writes backoffs writes_while_parked futile_before_backoff resumes".
audit_check() {
	tail -n +"$1" "$GLOG" | awk '
	function bytes(s,  n, u) {
		n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
		if (u == "KiB") n *= 1024; else if (u == "MiB") n *= 1048576; else if (u == "GiB") n *= 1073741824
		return n
	}
	function field(k,  v) {
		if (!match($0, k "=[^ ]+")) return ""
		return substr($0, RSTART + length(k) + 1, RLENGTH - length(k) - 1)
	}
	/reclaim backing off/ { backoffs++; if (futile > worst) worst = futile; parked = 1; next }
	/reclaim resumes/ { resumes++; parked = 0; futile = 0; next }
	/governor.audit: action:/ && /knob=memory.reclaim/ {
		writes++
		if (parked) after++
		req = bytes(field("requested")); rec = bytes(field("reclaimed")) - bytes(field("refaulted"))
		if (rec < 0.1 * req) futile++; else futile = 0
	}
	END { printf "%d %d %d %d %d\n", writes, backoffs, after, worst, resumes }'
}

scrape() {
	exec 3<>/dev/tcp/127.0.0.1/9477 || return 1
	printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	cat <&3
	exec 3<&-
}

trap 'stop_workload; swapoff -a 2>/dev/null' EXIT
swapoff -a 2>/dev/null

# ---- A kernel without memory.reclaim (before 5.19: Debian 11's 5.10) -------
# The reclaim controller cannot act at all: the governor must say so once,
# naming the missing file, write nothing, and keep governing the rest.
if [ ! -e "$SLICE/memory.reclaim" ] && [ ! -e "$CGROOT/system.slice/memory.reclaim" ]; then
	log "this kernel has no memory.reclaim: the degradation leg"
	check "zram swap" zram_swap 1536M
	start_workload "$RESULTS/ops_degraded.txt"
	m0=$(cat $SLICE/memory.current)
	start_gov
	sleep "${RECLAIMANON_DEGRADED_SECONDS:-30}"
	kill -0 "$GOV_PID" 2>/dev/null || fail "the governor exited"
	m1=$(cat $SLICE/memory.current)
	refused=$(grep -c 'policy action impossible on this host; observing only.*controller=batch-proactive.*no memory.reclaim' "$GLOG")
	read -r w _ _ _ _ < <(audit_check 1)
	governor_stop TERM
	grep -m1 'controller=batch-proactive' "$GLOG" | sed 's/^/  /'
	log "no memory.reclaim: $refused refusal line(s), $w writes; batch.slice memory.current $(mib "$m0") -> $(mib "$m1") MiB"
	summary "no_memory_reclaim=refused lines=$refused writes=$w mem=$(mib "$m0")->$(mib "$m1")MiB"
	check "no memory.reclaim: the reclaim controller is refused once, naming the missing file" test "$refused" -eq 1
	check "no memory.reclaim: no reclaim writes" test "$w" -eq 0
	check "no memory.reclaim: memory.current not reclaimed (within 32 MiB)" test "$m1" -ge $((m0 - (32 << 20)))
	check "governor exited cleanly on SIGTERM" test "$GOV_RC" = 0
	exit 0
fi

# ---- Leg 1: zram swap -----------------------------------------------------
if leg swap; then
	check "zram swap" zram_swap 1536M
	start_workload "$RESULTS/ops_with_swap.txt"
	s0=$(now_ms)
	vmload sample -cgroup "$SLICE" -out "$RESULTS/with_swap.csv" &
	SPID=$!
	sleep "$base_time" # the job without the governor: its baseline throughput
	g0=$(now_ms)
	start_gov
	target=$(((hot + cache) * 115 / 100))
	t0=$(date +%s)
	reached=
	while [ $(($(date +%s) - t0)) -lt "$leg1_max" ]; do
		if [ "$(cat $SLICE/memory.current)" -le "$target" ]; then
			reached=$(($(date +%s) - t0))
			break
		fi
		sleep 5
	done
	g1=$(now_ms)
	m1=$(cat $SLICE/memory.current)
	s1=$(cat $SLICE/memory.swap.current)
	f1=$(keyed file)
	metrics=$(scrape)
	echo "$metrics" | grep '^governor_reclaim' >"$RESULTS/metrics_with_swap.txt"
	governor_stop TERM
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	# Memory some avg10 above the goal (0.1%): the longest run of samples (1 s).
	p_max=$(csv_col "$RESULTS/with_swap.csv" mem_some_avg10 | sort -g | tail -1)
	p_run=$(csv_col "$RESULTS/with_swap.csv" mem_some_avg10 | awk '$1 > 0.1 { n++; if (n > m) m = n; next } { n = 0 } END { print m + 0 }')
	read -r w1 b1 _ _ _ < <(audit_check 1)
	# The job's throughput: before the governor, and while it reclaimed.
	r0=$(ops_rate "$RESULTS/ops_with_swap.txt" "$s0" "$g0")
	r1=$(ops_rate "$RESULTS/ops_with_swap.txt" "$g0" "$g1")
	tput=$(awk -v a="$r0" -v b="$r1" 'BEGIN { if (a > 0) printf "%.1f", 100 * b / a; else print 0 }')
	req=$(awk '/^governor_reclaim_requested_bytes_total/ { s += $NF } END { printf "%.0f", s }' "$RESULTS/metrics_with_swap.txt")
	got=$(awk '/^governor_reclaimed_bytes_total/ { s += $NF } END { printf "%.0f", s }' "$RESULTS/metrics_with_swap.txt")
	# The footprint every 20 s from the governor's start (the sampler began
	# (g0 - s0) ms earlier).
	foot=$(awk -F, -v off="$(((g0 - s0) / 1000))" 'NR > 1 { t = $1 - off; if (t >= next_t) { printf "%s%ds:%dMiB", sep, next_t, $2 / 1048576; sep = " "; next_t += 20 } }' next_t=0 "$RESULTS/with_swap.csv")
	log "with swap: memory.current $(mib "$m1") MiB (target <= $(mib "$target") MiB) after ${reached:-$leg1_max}s, swap $(mib "$s1") MiB, file $(mib "$F0") -> $(mib "$f1") MiB, $w1 writes, requested $(mib "$req") MiB, reclaimed $(mib "$got") MiB, memory some avg10 max ${p_max}% (longest run above 0.1%: ${p_run}s)"
	log "with swap: footprint after the governor's start: $foot"
	log "with swap: the job's throughput $r1 pages/s while reclaimed, $r0 before the governor (${tput}%)"
	summary "swap_leg=${reached:-timeout}s mem=$(mib "$m1")MiB swap=$(mib "$s1")MiB file=$(mib "$F0")->$(mib "$f1")MiB writes=$w1 requested=$(mib "$req")MiB reclaimed=$(mib "$got")MiB psi_max=${p_max}% throughput=${tput}%"
	stop_workload
	swapoff /dev/zram0 && echo 1 >/sys/block/zram0/reset
	# Every write is measured (memory.current and memory.stat before and
	# after): an unmeasured one means the actuator the loop holds cannot read
	# memory accounting, and the step never ramps (2026-12-06: the flight
	# recorder's wrapper hid it; 49 writes of 5 MiB in 300 s).
	unmeasured=$(grep -c 'knob=memory.reclaim.*reclaimed=unmeasured' "$GLOG")
	check "with swap: every reclaim write measured ($unmeasured unmeasured)" test "$unmeasured" -eq 0
	check "with swap: within 15% above hot+cache within ${leg1_max}s" test -n "$reached"
	# What left was cold: the anonymous cold set (to swap) and the page cache,
	# which the reader read twice at the start and never again. 6.1 swaps the
	# cold set first (>= 300 MiB); 6.12 drops the unused cache first and swaps
	# less (258 MiB on 2026-12-06). Either way at least 300 MiB of cold memory
	# must have gone, and some of it to swap (anonymous memory was reclaimed).
	check "with swap: cold memory left (swap + page cache dropped >= 300 MiB)" test $((s1 + F0 - f1)) -ge $((300 << 20))
	check "with swap: anonymous memory went to swap (>= 100 MiB)" test "$s1" -ge $((100 << 20))
	# The throughput is a figure, not asserted: under TCG the first ~40 s of
	# reclaim cost the job 30-40 % (63.8-64.8 % in 2026-12-06's runs, with
	# and without the BPF sensors), with memory pressure at 0.00 % throughout,
	# then it ran at its baseline while reclaim went on. Scanning and
	# unmapping a running job's pages sends TLB flushes to its CPU, and TCG
	# refills its software TLB after each; the issue's 5 % bound needs a real
	# CPU to be judged.
	check "with swap: the job's throughput was measured" test "$r0" -gt 0 -a "$r1" -gt 0
	check "with swap: memory some avg10 above the goal for at most one interval (${p_run}s)" test "$p_run" -le 6
	check "with swap: reclaimed bytes exported" grep -q 'governor_reclaimed_bytes_total{cgroup="batch.slice",controller="batch-proactive"} [1-9]' "$RESULTS/metrics_with_swap.txt"
	[ "$b1" -eq 0 ] || log "note: $b1 backoff line(s) in the swap leg (once the cold set is gone, only hot pages are left)"
	check "governor exited cleanly on SIGTERM" test "$GOV_RC" = 0
fi

# ---- Leg 2: no swap -------------------------------------------------------
if leg noswap; then
	check "no swap" test "$(awk 'NR > 1' /proc/swaps | wc -l)" -eq 0
	from=$(($(wc -l <"$GLOG") + 1))
	start_workload "$RESULTS/ops_without_swap.txt"
	vmload sample -cgroup "$SLICE" -out "$RESULTS/without_swap.csv" &
	SPID=$!
	start_gov
	sleep "$leg2_time"
	read -r w2 b2 after2 futile2 _ < <(audit_check "$from")
	a2=$(keyed anon)
	f_min=$(csv_col "$RESULTS/without_swap.csv" file | sort -n | head -1)
	log "without swap: $w2 writes, anon $(mib "$A0") -> $(mib "$a2") MiB, file $(mib "$F0") -> lowest $(mib "$f_min") MiB, $b2 backoff lines, $futile2 futile writes before it, $after2 writes after it"
	grep 'reclaim backing off' "$GLOG" | tail -1
	summary "noswap_writes=$w2 noswap_file=$(mib "$F0")->$(mib "$f_min")MiB noswap_anon=$(mib "$A0")->$(mib "$a2")MiB futile_before_backoff=$futile2"

	# Swap appears: reclaim resumes by itself within an interval or two.
	check "zram swap added" zram_swap 1536M
	sleep 20
	read -r w3 _ _ _ r3 < <(audit_check "$from")
	governor_stop TERM
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	log "after adding swap: $r3 resume lines, $((w3 - w2)) more writes"
	summary "resumed_writes=$((w3 - w2))"

	check "without swap: the page cache was reclaimed (>= 150 MiB of it)" test "$f_min" -le $((F0 - (150 << 20)))
	check "without swap: anonymous memory untouched (within 8 MiB)" test "$a2" -ge $((A0 - (8 << 20)))
	check "without swap: exactly one backoff line" test "$b2" -eq 1
	check "without swap: it names the anonymous memory and the missing swap" grep -q 'reclaim backing off: nothing reclaimable: .*anonymous, no swap' "$GLOG"
	check "without swap: at most 3 futile writes before backing off" test "$futile2" -le 3
	check "without swap: no writes after backing off" test "$after2" -eq 0
	check "swap added: reclaim resumes" test "$r3" -ge 1
	check "swap added: it writes again" test "$((w3 - w2))" -ge 1
	check "governor exited cleanly on SIGTERM" test "$GOV_RC" = 0
fi

# ---- Leg 3 (RECLAIMANON_LEGS=...slowswap): a swap file --------------------
# Slow swap (a file on the scratch disk, not zram): swapping the cold set
# out costs far more than dropping clean page cache, so while the slice has
# page cache the governor asks memory.reclaim for file pages only
# (swappiness=0, Linux 6.11+). Asserted: the 200 MiB cache goes (>= 150
# MiB) before more than 32 MiB of anonymous memory goes to swap. Contrast
# leg 1 (zram, fast): 6.1 swaps the cold set first there and the cache
# stays. A kernel without swappiness= (6.1): the governor must say so once,
# naming memory.reclaim, and reclaim as before.
if leg slowswap; then
	swapoff -a 2>/dev/null
	[ -e /sys/block/zram0/reset ] && echo 1 >/sys/block/zram0/reset
	fallocate -l 1G /scratch/swapfile && chmod 600 /scratch/swapfile && mkswap -q /scratch/swapfile >/dev/null &&
		swapon /scratch/swapfile || fail "swap file"
	from=$(($(wc -l <"$GLOG") + 1))
	start_workload "$RESULTS/ops_slowswap.txt"
	# Probed as the actuator does, once batch.slice exists: only EINVAL
	# says the kernel lacks it (EAGAIN is a reclaim that fell short);
	# bash's echo names the errno.
	if err=$( { echo '1M swappiness=0' >"$SLICE/memory.reclaim"; } 2>&1) || ! echo "$err" | grep -q 'Invalid argument'; then
		swappiness=yes
	else
		swappiness=no
	fi
	log "slow swap: memory.reclaim swappiness=: $swappiness (${err:-ok})"
	vmload sample -cgroup "$SLICE" -out "$RESULTS/slowswap.csv" &
	SPID=$!
	start_gov
	t0=$(date +%s)
	while [ $(($(date +%s) - t0)) -lt "${RECLAIMANON_SLOWSWAP_SECONDS:-90}" ]; do
		[ "$(keyed file)" -le $((F0 - (150 << 20))) ] && break
		sleep 2
	done
	t_file=$(($(date +%s) - t0))
	sleep 2
	governor_stop TERM
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	f3=$(keyed file)
	# The most swapped out while the cache was still there (samples until
	# the file count first fell 150 MiB).
	swap_then=$(awk -F, -v lim=$((F0 - (150 << 20))) 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "file") fc = i; if ($i == "swap_current") sc = i }; next }
		{ if ($sc > m) m = $sc; if ($fc <= lim) { print m + 0; found = 1; exit } } END { if (!found) print m + 0 }' "$RESULTS/slowswap.csv")
	read -r w4 _ _ _ _ < <(audit_check "$from")
	warned=$(tail -n +"$from" "$GLOG" | grep -c 'memory.reclaim takes no swappiness=')
	log "slow swap (swappiness= $swappiness): file $(mib "$F0") -> $(mib "$f3") MiB in ${t_file}s, at most $(mib "$swap_then") MiB swapped out meanwhile, $w4 writes, $warned warning(s)"
	summary "slowswap_swappiness=$swappiness slowswap_file=$(mib "$F0")->$(mib "$f3")MiB slowswap_s=$t_file slowswap_swapped=$(mib "$swap_then")MiB slowswap_writes=$w4"
	stop_workload
	swapoff /scratch/swapfile
	rm -f /scratch/swapfile
	check "slow swap: the page cache was reclaimed (>= 150 MiB)" test "$f3" -le $((F0 - (150 << 20)))
	if [ "$swappiness" = yes ]; then
		check "slow swap: at most 32 MiB swapped out while the cache lasted" test "$swap_then" -le $((32 << 20))
		check "slow swap: no warning about swappiness=" test "$warned" -eq 0
	else
		check "slow swap, no swappiness= in this kernel: said once" test "$warned" -eq 1
	fi
	check "governor exited cleanly on SIGTERM" test "$GOV_RC" = 0
fi
