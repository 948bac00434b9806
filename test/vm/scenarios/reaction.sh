# Scenario "reaction": how long after memory pressure sets in does the
# governor act, compared with systemd-oomd at its most aggressive settings,
# on the same workload in the same run (issue 6's reaction-time benchmark).
#
# Workload (both legs, the same command): a cgroup with memory.high 96 MiB
# and zram swap; `vmload anon` waits 1 s, then populates 256 MiB and keeps
# touching all of it, so it thrashes against the limit and its memory
# pressure rises sharply.
#
# Onset: `vmload react` polls the cgroup's memory.pressure every 10 ms; the
# onset is the first poll that sees the "some" total= grow, i.e. the first
# stall (it began at most one poll earlier). The reaction is from the onset
# to the poll that sees the corrective event:
#   governor leg: memory.high differs from 96 MiB (the governor's write), in
#     vmtest/reaction/gN, with a memory_high policy on memory.some.stall
#     above 10%; cross-checked with the governor's "action" log line. Two
#     reports wake the loop: the BPF fast path (10 ms of memory stalls by
#     the cgroup's tasks within 100 ms, timed in the kernel between
#     psi_memstall_enter and _leave; a second Step 100 ms after the woken
#     one) and a PSI trigger (200 ms of stall in its 2 s window);
#   oomd leg: a task of the cgroup starts to exit (SIGKILL), in the transient
#     service oomdrunN.service in oomdrunN.slice with
#     ManagedOOMMemoryPressure=kill, ManagedOOMMemoryPressureLimit=0.01% and
#     oomd's DefaultMemoryPressureDurationSec=1s (the lowest values systemd
#     252 accepts); cross-checked with oomd's "Killed" journal line.
#   governor D-Bus leg (REACTION_DBUS_RUNS, default 4): the workload runs as
#     the transient service govdbusN.service in reactiondbus.slice (systemd-run
#     -p MemoryHigh=96M), so the governor raises MemoryHigh through systemd's
#     D-Bus API and systemd writes memory.high; the event is the same file
#     changing, and `systemctl show -P MemoryHigh` must show the new value
#     (proof that the write went through systemd, not cgroupfs).
# The legs alternate; the governor runs throughout (with BPF sensing,
# which the fast path needs), and so does oomd. oomd acts at most once per 15 s (its
# post-action delay), so an oomd run starts 15 s after the previous kill.
#
# Crossing: the governor legs are also timed from the first poll at which
# the stall over the trailing 100 ms reached the policy's 10 % (10 ms; the
# fast path's window, and a sliding window crosses no later than any
# other): the governor's own latency, without the workload's ramp. A light
# start (the stall under 10 % for a few hundred ms after the onset, which
# the governor rightly waits out) counts in the reaction from the onset
# only.
#
# Asserts: every governor run (both paths) raised memory.high; on the
# cgroupfs path p50 within 250 ms of the onset, p99 within 250 ms of the
# crossing (REACTION_FAST_MS, REACTION_FAST_P99_MS; issue 14's fast path,
# under TCG) and within 2 s of the onset (REACTION_ONSET_P99_MS: a light
# start, which the governor rightly waits out, counts from the onset),
# with a fast-path wake-up in every run,
# the D-Bus path's within the trigger window plus 1 s (3 s; issue 6: "p99
# <= 1 s after the PSI window closes"; systemd's own latency comes on top);
# the fast path timed memory stalls (psi_memstall programs); oomd was
# active and killed the workload in every oomd run. p99 is nearest-rank:
# with fewer than 100 runs, the slowest run.
set -u
. "$VMTEST/lib.sh"
require_governor

runs=${REACTION_RUNS:-8}
dbus_runs=${REACTION_DBUS_RUNS:-4}
high=96M
workload=("$VMTEST/bin/vmload" anon -delay 1s -size 256M -hot 100)
target_ms=3000   # PSI trigger window (2 s) + 1 s
# The fast path (issue 14), under TCG: p50 within 250 ms of the onset, p99
# within 250 ms of the crossing and 2 s of the onset. Until the Step woken
# by an alert judged the stall by the alert's 100 ms window (bpf/README.md,
# "The fast path"), one governor run in eight took 272-841 ms from the
# crossing in half the runs of this scenario; since, p99 40-126 ms from
# the crossing. The PSI path it would fall back to is caught by the
# fast-path wake-up in every run.
fast_ms=${REACTION_FAST_MS:-250}
fast_p99_ms=${REACTION_FAST_P99_MS:-250}
onset_p99_ms=${REACTION_ONSET_P99_MS:-2000}
oomd_delay_ms=15000
# The policy's threshold (memory.some.stall above 10 %) at the finest grain
# the governor sees it, 10 ms of stall within 100 ms (its fast path's
# window): vmload react also times the governor legs from the first poll
# at which the stall over the trailing 100 ms reached it (cross_ms).
cross=(-cross 10 -cross-window 100ms)

[ -x /lib/systemd/systemd-oomd ] || fail "systemd-oomd is not installed in the image (test/vm/packages.txt)"
command -v systemd-run >/dev/null || fail "no systemd-run"

oomd_conf=/etc/systemd/oomd.conf.d/50-reaction.conf
cleanup() {
	journalctl -u systemd-oomd.service --no-pager -o short-unix >"$RESULTS/oomd.log" 2>&1
	for ((i = 1; i <= runs; i++)); do
		systemctl stop "oomdrun$i.service" "oomdrun$i.slice" 2>/dev/null
		rm -f "/run/systemd/system/oomdrun$i.slice"
	done
	systemctl stop reactiondbus.slice 2>/dev/null
	systemctl stop systemd-oomd.service 2>/dev/null
	rm -f "$oomd_conf"
	systemctl daemon-reload
	systemctl reset-failed 2>/dev/null
}
trap cleanup EXIT

check "zram swap" zram_swap 1G

# systemd-oomd at its most aggressive: act after 1 s (the minimum: "0, or at
# least 1 second") above a limit of 0.01% (the smallest non-zero fraction;
# 0 means "the default"), set both as oomd's default and on each slice.
mkdir -p "$(dirname "$oomd_conf")"
printf '[OOM]\nDefaultMemoryPressureLimit=0.01%%\nDefaultMemoryPressureDurationSec=1s\n' >"$oomd_conf"
for ((i = 1; i <= runs; i++)); do
	printf '[Unit]\nDescription=reaction scenario, oomd run %d\n[Slice]\nManagedOOMMemoryPressure=kill\nManagedOOMMemoryPressureLimit=0.01%%\n' \
		"$i" >"/run/systemd/system/oomdrun$i.slice"
done
systemctl daemon-reload
systemctl restart systemd-oomd.service || { journalctl -u systemd-oomd.service --no-pager | tail -20; fail "systemd-oomd does not start"; }
check "systemd-oomd active" systemctl is-active -q systemd-oomd.service
log "systemd $(systemctl --version | awk 'NR == 1 { print $2 }'); oomdrun1.slice: ManagedOOMMemoryPressure=$(systemctl show -P ManagedOOMMemoryPressure oomdrun1.slice) ManagedOOMMemoryPressureLimit=$(systemctl show -P ManagedOOMMemoryPressureLimit oomdrun1.slice); oomd.conf: $(tr '\n' ' ' <"$oomd_conf")"

governor_start "$VMTEST/policies/reaction"
grep -q 'BPF sensing loaded' "$RESULTS/governor.log" || fail "BPF sensing did not load: no fast path"
grep -q 'fast_path_memory_stalls=psi_memstall' "$RESULTS/governor.log" ||
	fail "the fast path does not time memory stalls (no psi_memstall programs): $(grep -m1 'memory stalls not timed' "$RESULTS/governor.log")"

csv=$RESULTS/reaction.csv
echo "leg,run,event,reaction_ms,onset_unix_ms,event_unix_ms,over_high_ms,stall_ms,max_gap_ms,high0,high1,log_ms,cross_ms,crossed_at_ms" >"$csv"
now_ms() { date +%s%3N; }
# field LINE KEY: the value of KEY= in a line of key=value.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# record LEG RUN LINE LOG_UNIX_MS: append one run to the CSV.
record() {
	local l=$3 onset log_ms=-
	onset=$(field "$l" onset_unix_ms)
	[ -n "$4" ] && [ "$onset" != - ] && [ -n "$onset" ] && log_ms=$(($4 - onset))
	echo "$1,$2,$(field "$l" event),$(field "$l" react_ms),$onset,$(field "$l" event_unix_ms),$(field "$l" over_high_ms),$(field "$l" stall_ms),$(field "$l" max_gap_ms),$(field "$l" high0),$(field "$l" high1),$log_ms,$(field "$l" cross_ms),$(field "$l" crossed_at_ms)" >>"$csv"
}

# armed PATH: the governor holds the cgroup's memory.pressure open (its PSI
# trigger).
armed() { find "/proc/$GOV_PID/fd" -lname "$1" 2>/dev/null | grep -q .; }

gov_run() {
	local i=$1 dir=$CG/reaction/g$i rp wp out l ts wt n
	cg_make "reaction/g$i" || fail "cgroup"
	echo "$high" >"$dir/memory.high"
	out=$RESULTS/react_g$i.txt
	vmload react -cgroup "$dir" -wait 30s -for 20s "${cross[@]}" >"$out" 2>&1 &
	rp=$!
	for ((n = 0; n < 100; n++)); do armed "$dir/memory.pressure" && break; sleep 0.1; done
	armed "$dir/memory.pressure" || log "governor run $i: no PSI trigger armed after 10 s (relying on the tick)"
	cg_run "reaction/g$i" "${workload[@]}"
	wp=$!
	wait "$rp"
	kill -KILL "$wp" 2>/dev/null
	wait "$wp" 2>/dev/null
	l=$(tail -1 "$out")
	# hclog's timestamp of the write: 2026-01-02T03:04:05.678Z
	wt=$(grep -m1 "action: controller=reaction-high cgroup=vmtest/reaction/g$i knob=memory.high" "$RESULTS/governor.log" | awk '{ print $1 }')
	ts=
	[ -n "$wt" ] && ts=$(date -d "$wt" +%s%3N 2>/dev/null)
	record governor "$i" "$l" "$ts"
	# Every wake-up of the run, also those logged after the write: the
	# loop logs one when it takes it, and a Step woken otherwise (the
	# host's trigger) may already have read the alert's share (rehearsal
	# of cb563a6: the write at .502 said 50.79 %, the wake-up came at .503).
	n=$(grep -c "woken by the BPF fast path: cgroup=vmtest/reaction/g$i\$" "$RESULTS/governor.log")
	echo "$i,$n" >>"$RESULTS/fastpath_wakes.csv"
	log "governor run $i: $l${ts:+ (log line at onset+$(tail -1 "$csv" | cut -d, -f12) ms)}; $n fast-path wake-ups"
	cg_wait_empty "reaction/g$i" 30 || log "governor run $i: workload cgroup not empty after 30 s"
	rmdir "$dir" 2>/dev/null
}

dbus_run() {
	local i=$1 unit=govdbus$i rp out l ts shown
	out=$RESULTS/react_d$i.txt
	vmload react -cgroup "$CGROOT/reactiondbus.slice/$unit.service" -wait 30s -for 20s "${cross[@]}" >"$out" 2>&1 &
	rp=$!
	# The workload waits 1 s before allocating: time for the governor to
	# see the new cgroup (inotify) and arm its PSI trigger.
	systemd-run --quiet --collect --unit="$unit" --slice=reactiondbus.slice -p MemoryHigh="$high" "${workload[@]}" ||
		log "D-Bus run $i: systemd-run failed"
	wait "$rp"
	shown=$(systemctl show -P MemoryHigh "$unit.service")
	systemctl stop "$unit.service" 2>/dev/null
	l=$(tail -1 "$out")
	ts=$(grep -m1 "action: controller=reaction-high cgroup=reactiondbus.slice/$unit.service knob=memory.high" "$RESULTS/governor.log" | awk '{ print $1 }')
	[ -n "$ts" ] && ts=$(date -d "$ts" +%s%3N 2>/dev/null)
	record dbus "$i" "$l" "$ts"
	echo "$i,$shown" >>"$RESULTS/dbus_memoryhigh.csv"
	log "D-Bus run $i: $l; systemctl show MemoryHigh=$shown${ts:+ (log line at onset+$(tail -1 "$csv" | cut -d, -f12) ms)}"
}

last_kill_ms=0
oomd_run() {
	local i=$1 unit=oomdrun$i rp out l ts wait_ms
	# PID1 hands the slice to oomd (over varlink) when it starts.
	systemctl start "$unit.slice" || fail "cannot start $unit.slice"
	wait_ms=$((last_kill_ms + oomd_delay_ms - $(now_ms)))
	[ "$wait_ms" -lt 1000 ] && wait_ms=1000
	sleep "$(awk -v m="$wait_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	out=$RESULTS/react_o$i.txt
	vmload react -cgroup "$CGROOT/$unit.slice/$unit.service" -wait 20s -for 30s >"$out" 2>&1 &
	rp=$!
	systemd-run --quiet --collect --unit="$unit" --slice="$unit.slice" -p MemoryHigh="$high" "${workload[@]}" ||
		log "oomd run $i: systemd-run failed"
	wait "$rp"
	last_kill_ms=$(now_ms)
	systemctl stop "$unit.service" 2>/dev/null
	l=$(tail -1 "$out")
	ts=$(journalctl -u systemd-oomd.service --no-pager -o short-unix | grep -m1 "Killed .*/$unit.slice/$unit.service" | awk '{ print $1 }')
	[ -n "$ts" ] && ts=${ts%.*}$(printf '%.3s' "${ts#*.}") # seconds.micros -> ms
	record oomd "$i" "$l" "$ts"
	log "oomd run $i: $l${ts:+ (journal line at onset+$(tail -1 "$csv" | cut -d, -f12) ms)}"
	systemctl stop "$unit.slice" 2>/dev/null
}

log "onset = first poll (every 10 ms) at which the cgroup's memory.pressure 'some' total= grows; reaction = onset to the poll that sees memory.high changed (governor) or a task of the cgroup exiting (oomd's SIGKILL)"
t0=$(date +%s)
for ((i = 1; i <= runs; i++)); do
	oomd_run "$i"
	gov_run "$i"
	[ "$i" -le "$dbus_runs" ] && dbus_run "$i"
done
log "$runs + $runs + $dbus_runs runs in $(($(date +%s) - t0)) s"
check "systemd-oomd still active" systemctl is-active -q systemd-oomd.service
governor_stop TERM

# pct LEG P EVENT [COLUMN]: nearest-rank percentile of the reaction times
# (column 4, or COLUMN) of one leg's runs that ended in its corrective
# event. A "-" in cross_ms (13: the event came before vmload saw the
# threshold crossed) counts as 0.
pct() {
	awk -F, -v leg="$1" -v ev="$3" -v c="${4:-4}" '$1 == leg && $3 ~ ev { print ($c == "-" ? 0 : $c) }' "$csv" | sort -n |
		awk -v p="$2" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } r = int(p / 100 * NR); if (r < p / 100 * NR) r++; if (r < 1) r = 1; print v[r] }'
}
count() { awk -F, -v leg="$1" -v ev="$2" '$1 == leg && $3 ~ ev' "$csv" | wc -l; }
g50=$(pct governor 50 '^high$')
g99=$(pct governor 99 '^high$')
gx50=$(pct governor 50 '^high$' 13)
gx99=$(pct governor 99 '^high$' 13)
g_early=$(awk -F, '$1 == "governor" && $3 == "high" && $13 == "-"' "$csv" | wc -l)
cross_at50=$(awk -F, '$1 == "governor" && $3 == "high" && $14 != "-" { print $14 }' "$csv" | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
o50=$(pct oomd 50 '^(exit|empty)$')
o99=$(pct oomd 99 '^(exit|empty)$')
d50=$(pct dbus 50 '^high$')
d99=$(pct dbus 99 '^high$')
dx99=$(pct dbus 99 '^high$' 13)
d_ok=$(count dbus '^high$')
# systemd's MemoryHigh moved off 96 MiB (100663296) in every D-Bus run.
d_shown=$(awk -F, '$2 != "" && $2 != 100663296 && $2 != "infinity"' "$RESULTS/dbus_memoryhigh.csv" 2>/dev/null | wc -l)
g_ok=$(count governor '^high$')
o_ok=$(count oomd '^(exit|empty)$')
o_journal=$(journalctl -u systemd-oomd.service --no-pager | grep -c 'Killed .*/oomdrun[0-9]*\.slice/oomdrun[0-9]*\.service')
g_logged=$(grep -c 'action: controller=reaction-high cgroup=vmtest/reaction/g[0-9]* knob=memory.high' "$RESULTS/governor.log")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
log "governor via D-Bus: p50 ${d50} ms, p99 ${d99} ms (from the crossing ${dx99} ms) ($d_ok/$dbus_runs raised MemoryHigh, $d_shown/$dbus_runs visible in systemctl show)"
log "governor from the threshold crossing (10 ms of stall within 100 ms): p50 ${gx50} ms, p99 ${gx99} ms; the crossing came a median ${cross_at50} ms after the onset; $g_early run(s) acted before vmload saw it (counted as 0)"
log "governor: p50 ${g50} ms, p99 ${g99} ms ($g_ok/$runs raised memory.high, $g_logged logged); oomd: p50 ${o50} ms, p99 ${o99} ms ($o_ok/$runs killed, $o_journal in its journal); governor/oomd p50 $(ratio "$g50" "$o50"), p99 $(ratio "$g99" "$o99")"
wakes=$(cut -d, -f2 "$RESULTS/fastpath_wakes.csv" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "%d %d %d", s, v[int((NR + 1) / 2)], v[NR] }')
read -r wakes_total wakes_p50 wakes_max <<<"$wakes"
log "fast-path wake-ups of the governor runs' cgroups: $wakes_total in $runs runs, per run median $wakes_p50, max $wakes_max (the kernel allows one per cgroup per 50 ms)"
summary "runs=$runs gov_p50_ms=$g50 gov_p99_ms=$g99 gov_cross_p50_ms=$gx50 gov_cross_p99_ms=$gx99 gov_before_cross=$g_early cross_after_onset_p50_ms=$cross_at50 oomd_p50_ms=$o50 oomd_p99_ms=$o99 ratio_p50=$(ratio "$g50" "$o50") ratio_p99=$(ratio "$g99" "$o99") gov_raised=$g_ok/$runs oomd_killed=$o_ok/$runs dbus_p50_ms=$d50 dbus_p99_ms=$d99 dbus_cross_p99_ms=$dx99 dbus_raised=$d_ok/$dbus_runs target_ms=$target_ms fast_target_ms=$fast_ms fast_p99_bound_ms=$fast_p99_ms onset_p99_bound_ms=$onset_p99_ms fast_wakes=$wakes_total fast_wakes_per_run_p50=$wakes_p50 gov_start_s=$GOV_START_S"

check "the governor raised memory.high in every run" test "$g_ok" = "$runs"
check "the governor logged every write" test "$g_logged" -ge "$runs"
within() { [ "$1" != - ] && [ "$1" -le "$2" ]; }
check "governor p50 ${g50} ms <= ${fast_ms} ms (the BPF fast path)" within "$g50" "$fast_ms"
check "governor p99 ${gx99} ms <= ${fast_p99_ms} ms from the threshold crossing (the BPF fast path)" within "$gx99" "$fast_p99_ms"
check "governor p99 ${g99} ms <= ${onset_p99_ms} ms from the onset (${fast_ms} ms: $(within "$g99" "$fast_ms" && echo met || echo "missed: a light start?"))" within "$g99" "$onset_p99_ms"
check "the fast path woke the loop in every governor run" test "$(awk -F, '$2 > 0' "$RESULTS/fastpath_wakes.csv" | wc -l)" = "$runs"
if [ "$dbus_runs" -gt 0 ]; then
	check "the governor raised MemoryHigh through systemd in every D-Bus run" test "$d_ok" = "$dbus_runs"
	check "systemctl show has the governor's MemoryHigh in every D-Bus run" test "$d_shown" = "$dbus_runs"
	check "governor via D-Bus p99 ${d99} ms <= ${target_ms} ms" within "$d99" "$target_ms"
fi
check "systemd-oomd killed the workload in every oomd run" test "$o_ok" = "$runs"
check "and logged each kill" test "$o_journal" -ge "$runs"
