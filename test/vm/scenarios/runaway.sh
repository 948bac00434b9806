# Scenario "runaway": a batch job allocates without bound (it would exhaust
# the guest's 2 GiB). A `last_resort` policy freezes it once it passes
# 1 GiB, then kills it when the condition still holds after the grace
# period. The latency service next to it, a protected class with memory.low
# from a `protect` policy, survives untouched. The batch parent has
# memory.max 1600M so that a governor failure ends in a memcg OOM kill
# (counted, and failing the scenario) rather than a dead guest.
set -u
. "$VMTEST/lib.sh"
require_governor

cg_make runaway/service || fail "cgroup"
cg_make runaway/batch/job1 || fail "cgroup"
echo 1600M >"$CG/runaway/batch/memory.max"

cg_run runaway/service vmload anon -size 128M -hot 100
svc=$!
governor_start "$VMTEST/policies/runaway"
vmload sample -cgroup "$CG/runaway/batch/job1" -out "$RESULTS/batch.csv" -every 250ms &
s1=$!
vmload sample -cgroup "$CG/runaway/service" -out "$RESULTS/service.csv" -every 500ms &
s2=$!
sleep 2

t0=$(date +%s%N)
cg_run runaway/batch/job1 vmload grow -rate 64M -every 250ms
batch=$!
ev=$CG/runaway/batch/job1/cgroup.events
for _ in $(seq 50); do grep -q 'populated 1' "$ev" && break; sleep 0.1; done
t_freeze= t_kill= peak=0
for _ in $(seq 900); do
	cur=$(cat "$CG/runaway/batch/job1/memory.current" 2>/dev/null || echo 0)
	[ "$cur" -gt "$peak" ] && peak=$cur
	now_ms=$((($(date +%s%N) - t0) / 1000000))
	if [ -z "$t_freeze" ] && grep -q 'frozen 1' "$ev"; then
		t_freeze=$now_ms
		log "batch frozen at ${now_ms} ms, memory.current $(mib "$cur") MiB"
	fi
	if grep -q 'populated 0' "$ev"; then
		t_kill=$now_ms
		log "batch gone at ${now_ms} ms"
		break
	fi
	sleep 0.1
done
wait $batch 2>/dev/null
batch_rc=$?
sleep 2
kill $s1 $s2 2>/dev/null
wait $s1 $s2 2>/dev/null
svc_low=$(cg_get runaway/service memory.low)
svc_frozen=$(csv_col "$RESULTS/service.csv" frozen | sort -u | tr '\n' ' ')
oom_kills=$(awk '/^oom_kill / { print $2 }' "$CG/runaway/batch/memory.events")
governor_stop TERM

summary "gov_start_s=$GOV_START_S freeze_ms=${t_freeze:-never} kill_ms=${t_kill:-never} batch_peak_mib=$(mib "$peak") batch_exit=$batch_rc memcg_oom_kills=$oom_kills service_alive=$(kill -0 $svc 2>/dev/null && echo yes || echo no)"
check "batch was frozen" test -n "$t_freeze"
check "batch was killed after being frozen" test -n "$t_kill"
check "batch died by SIGKILL" test "$batch_rc" = 137
check "no kernel OOM kill was needed" test "$oom_kills" = 0
check "service still running" kill -0 $svc
check "service never frozen" test "$svc_frozen" = "0 "
check "service memory.low was protected (256 MiB)" test "$svc_low" = $((256 << 20))
check "the governor logged the freeze" grep -qi 'freez' "$RESULTS/governor.log"
