# Scenario "reclaim": proactive reclaim. A cgroup holds ~600 MiB of cold,
# clean page cache (a file on the ext4 scratch disk, read once) and a small
# hot anonymous working set. Without the governor its memory.current stays
# put (the guest has plenty of free memory); with a `reclaim` policy it
# shrinks by at least 30% while the cgroup's memory pressure stays within
# the policy's goal (1% some avg10), and never below min_size.
set -u
. "$VMTEST/lib.sh"

leg_time=${RECLAIM_LEG_SECONDS:-40}
goal=1.0
min_size=$((64 << 20))
mountpoint -q /scratch || fail "scratch disk not mounted"

log "writing the cold file"
dd if=/dev/zero of=/scratch/cold bs=1M count=600 status=none conv=fsync || fail "dd"

# leg NAME: start the workload in a fresh cgroup, wait until it has read the
# file, and set M0 to its memory.current.
start_workload() {
	cg_make reclaim/app || fail "cgroup"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	rm -f "$RESULTS/ready"
	cg_run reclaim/app sh -c "cat /scratch/cold >/dev/null && touch $RESULTS/ready && exec vmload anon -size 48M -hot 100"
	WL=$!
	for _ in $(seq 600); do [ -f "$RESULTS/ready" ] && break; sleep 0.2; done
	[ -f "$RESULTS/ready" ] || fail "workload never finished reading the file"
	sleep 2
	M0=$(cg_get reclaim/app memory.current)
	log "workload ready: memory.current $(mib "$M0") MiB"
}

stop_workload() {
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	echo 1 >"$CG/reclaim/app/cgroup.kill"
	cg_wait_empty reclaim/app 10
	rmdir "$CG/reclaim/app"
}

# Leg 1: no governor.
start_workload
vmload sample -cgroup "$CG/reclaim/app" -out "$RESULTS/without_governor.csv" &
SPID=$!
sleep "$leg_time"
m_off=$(cg_get reclaim/app memory.current)
off_pct=$(((M0 - m_off) * 100 / M0))
log "without governor: $(mib "$M0") -> $(mib "$m_off") MiB (${off_pct}% less)"
stop_workload
summary "without_gov=$(mib "$M0")->$(mib "$m_off")MiB(-${off_pct}%)"
check "without the governor memory.current does not shrink (< 10%)" test "$off_pct" -lt 10

require_governor

# Leg 2: the governor with a reclaim policy.
start_workload
vmload sample -cgroup "$CG/reclaim/app" -out "$RESULTS/with_governor.csv" &
SPID=$!
governor_start "$VMTEST/policies/reclaim"
sleep "$leg_time"
m_on=$(cg_get reclaim/app memory.current)
governor_stop TERM
on_pct=$(((M0 - m_on) * 100 / M0))
csv=$RESULTS/with_governor.csv
p_max=$(csv_col "$csv" mem_some_avg10 | sort -g | tail -1)
m_min=$(csv_col "$csv" memory_current | sort -n | head -1)
reclaims=$(grep -ci 'reclaim' "$RESULTS/governor.log")
log "with governor: $(mib "$M0") -> $(mib "$m_on") MiB (${on_pct}% less), lowest $(mib "$m_min") MiB, memory some avg10 max ${p_max}%"
stop_workload
summary "with_gov=$(mib "$M0")->$(mib "$m_on")MiB(-${on_pct}%) psi_some_avg10_max=${p_max}% goal=${goal}%"
check "with the governor memory.current shrinks by >= 30%" test "$on_pct" -ge 30
check "memory pressure stays within the goal" awk -v p="$p_max" -v g="$goal" 'BEGIN { exit !(p <= g) }'
# The governor clamps each request to memory.current - min_size, but the
# kernel reclaims in batches and may overshoot a little: allow 8 MiB.
check "never below min_size (8 MiB kernel slack)" test "$m_min" -ge $((min_size - (8 << 20)))
check "governor logged its reclaim actions" test "$reclaims" -gt 0
check "governor exited cleanly on SIGTERM" test "$GOV_RC" = 0
