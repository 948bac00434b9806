# Scenario "lifecycle": the governor applies a `protect` policy (memory.low)
# and gives the cgroup its own value back: on SIGTERM directly; after
# SIGKILL, a restarted governor re-adopts the cgroup from its state file in
# /run/governor and restores the original value (not the one it found) when
# it stops.
set -u
. "$VMTEST/lib.sh"
require_governor

want=$((200 << 20))
orig=$((12 << 20))
pol=$VMTEST/policies/lifecycle
cg_make lifecycle/svc || fail "cgroup"
echo $orig >"$CG/lifecycle/svc/memory.low"
cg_run lifecycle/svc sleep infinity

# wait_low VALUE SECONDS: wait until memory.low is VALUE; sets WAITED_MS.
wait_low() {
	local t0 i
	t0=$(date +%s%N)
	for ((i = 0; i < $2 * 10; i++)); do
		if [ "$(cg_get lifecycle/svc memory.low)" = "$1" ]; then
			WAITED_MS=$((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		sleep 0.1
	done
	log "memory.low is $(cg_get lifecycle/svc memory.low), wanted $1"
	return 1
}

governor_start "$pol"
check "protect sets memory.low to 200 MiB" wait_low $want 15
apply_ms=$WAITED_MS
governor_stop TERM
check "SIGTERM: exit status 0" test "$GOV_RC" = 0
check "SIGTERM: memory.low restored to 12 MiB" wait_low $orig 2

governor_start "$pol"
check "second start applies again" wait_low $want 15
sleep 2
governor_stop KILL
check "SIGKILL: nothing restored it (value stays)" test "$(cg_get lifecycle/svc memory.low)" = $want
state=$(find /run/governor -type f -name state.json 2>/dev/null | head -5)
log "state files: ${state:-none}"
check "state.json under /run/governor" test -n "$state"

governor_start "$pol"
check "restart keeps memory.low at 200 MiB" wait_low $want 15
sleep 2
governor_stop TERM
check "after restart, SIGTERM restores the original 12 MiB (re-adopted)" wait_low $orig 2
summary "apply_ms=$apply_ms sigterm_restore=ok sigkill_restart_restore=ok"
