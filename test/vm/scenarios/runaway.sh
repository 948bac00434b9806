# Scenario "runaway": a batch job allocates without bound (it would exhaust
# the guest's 2 GiB). A `last_resort` policy freezes a batch job once the
# class passes 600 MiB, then kills it when the condition still holds after
# the grace period. A second, small batch job (job2) carries the
# trusted.governor.prefer xattr: it is chosen first although job1 is
# larger, and job1 follows once job2 is gone. Before each freeze the
# policy's hook writes a timestamp and sleeps past its 2 s timeout: the
# freeze must come after the timestamp, after the timeout and long before
# the sleep would end. The latency service next to it, a protected class
# with memory.low from a `protect` policy, survives untouched. The batch
# parent has memory.max 1600M so that a governor failure ends in a memcg
# OOM kill (counted, and failing the scenario) rather than a dead guest.
set -u
. "$VMTEST/lib.sh"
require_governor

cg_make runaway/service || fail "cgroup"
cg_make runaway/batch/job1 || fail "cgroup"
cg_make runaway/batch/job2 || fail "cgroup"
echo 1600M >"$CG/runaway/batch/memory.max"

# setxattr(2) through perl (perl-base is in every Debian root; the image
# has no setfattr). 188 is setxattr on x86_64.
perl -e 'my ($p, $n, $v) = @ARGV; syscall(188, $p, $n, $v, length($v), 0) == 0 or die "setxattr $n: $!\n"' \
	"$CG/runaway/batch/job2" trusted.governor.prefer 1 || fail "cannot set trusted.governor.prefer on job2"

hook=/run/vmtest-runaway-hook.sh
hooklog=$RESULTS/hook.log
cat >"$hook" <<EOS
#!/bin/sh
echo "\$(date +%s%N) \$GOVERNOR_CGROUP \$1" >>$hooklog
sleep 30
EOS
chmod 0755 "$hook"

cg_run runaway/service vmload anon -size 128M -hot 100
svc=$!
cg_run runaway/batch/job2 vmload anon -size 96M -hot 10
small=$!
governor_start "$VMTEST/policies/runaway"
vmload sample -cgroup "$CG/runaway/batch/job1" -out "$RESULTS/batch.csv" -every 250ms &
s1=$!
vmload sample -cgroup "$CG/runaway/service" -out "$RESULTS/service.csv" -every 500ms &
s2=$!
# When the governor writes cgroup.freeze, and when job2 empties: a Go
# sampler every 50 ms, for timings the shell loop below (a few forks per
# round, ~1 s under TCG) cannot give.
vmload watch -out "$RESULTS/freeze.csv" -every 50ms job1="$CG/runaway/batch/job1/cgroup.freeze" \
	job2="$CG/runaway/batch/job2/cgroup.freeze" job2procs="$CG/runaway/batch/job2/cgroup.procs" &
s3=$!
sleep 2

t0=$(date +%s%N)
cg_run runaway/batch/job1 vmload grow -rate 16M -every 250ms
batch=$!
ev=$CG/runaway/batch/job1/cgroup.events
ev2=$CG/runaway/batch/job2/cgroup.events
for _ in $(seq 50); do grep -q 'populated 1' "$ev" && break; sleep 0.1; done
t_freeze= t_kill= peak=0 t2_freeze= t2_kill= job1_at_t2=0
for _ in $(seq 900); do
	cur=$(cat "$CG/runaway/batch/job1/memory.current" 2>/dev/null || echo 0)
	[ "$cur" -gt "$peak" ] && peak=$cur
	now_ns=$(date +%s%N)
	now_ms=$(((now_ns - t0) / 1000000))
	if [ -z "$t2_freeze" ] && grep -q 'frozen 1' "$ev2"; then
		t2_freeze=$now_ms job1_at_t2=$cur
		log "job2 (preferred) frozen at ${now_ms} ms; job1 memory.current $(mib "$cur") MiB"
	fi
	if [ -z "$t2_kill" ] && grep -q 'populated 0' "$ev2"; then
		t2_kill=$now_ms
		log "job2 gone at ${now_ms} ms"
	fi
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
wait $small 2>/dev/null
small_rc=$?
sleep 2
cat "$hooklog" 2>/dev/null
# The hook's first and second runs: "NS CGROUP ARG".
hook1_ns=$(awk 'NR == 1 { print $1 }' "$hooklog" 2>/dev/null)
hook1_cg=$(awk 'NR == 1 { print $2 }' "$hooklog" 2>/dev/null)
hook2_ns=$(awk 'NR == 2 { print $1 }' "$hooklog" 2>/dev/null)
hook2_cg=$(awk 'NR == 2 { print $2 }' "$hooklog" 2>/dev/null)
# From freeze.csv (t in Unix seconds, ms resolution): the first time each
# job's cgroup.freeze read 1, and the first time after that job2 was empty.
read -r f1_ms f2_ms k2_ms < <(awk -F, 'NR > 1 {
	t = int($1 * 1000 + 0.5)
	if ($2 == "1" && !f1) f1 = t
	if ($3 == "1" && !f2) f2 = t
	if (f2 && $4 == "" && !k2) k2 = t
} END { printf "%.0f %.0f %.0f\n", f1, f2, k2 }' "$RESULTS/freeze.csv")
gap1_ms=$((f2_ms - ${hook1_ns:-0} / 1000000))
gap2_ms=$((f1_ms - ${hook2_ns:-0} / 1000000))
frozen2_ms=$((k2_ms - f2_ms))
hook_sleepers=$(pgrep -f 'vmtest-runaway-hook' | wc -l)
kill $s1 $s2 $s3 2>/dev/null
wait $s1 $s2 $s3 2>/dev/null
svc_low=$(cg_get runaway/service memory.low)
svc_frozen=$(csv_col "$RESULTS/service.csv" frozen | sort -u | tr '\n' ' ')
oom_kills=$(awk '/^oom_kill / { print $2 }' "$CG/runaway/batch/memory.events")
governor_stop TERM

summary "gov_start_s=$GOV_START_S preferred_freeze_ms=${t2_freeze:-never} preferred_kill_ms=${t2_kill:-never} job1_at_preferred_freeze_mib=$(mib "$job1_at_t2") freeze_ms=${t_freeze:-never} kill_ms=${t_kill:-never} hook_to_freeze_ms=$gap1_ms,$gap2_ms preferred_frozen_ms=$frozen2_ms batch_peak_mib=$(mib "$peak") batch_exit=$batch_rc memcg_oom_kills=$oom_kills service_alive=$(kill -0 $svc 2>/dev/null && echo yes || echo no)"
check "the preferred job2 was frozen" test -n "$t2_freeze"
check "job2 was frozen while the larger job1 ran unfrozen" test -n "$t2_freeze" -a "$job1_at_t2" -gt $((96 << 20))
check "job2 was frozen before job1" test "${t2_freeze:-999999}" -lt "${t_freeze:-0}"
check "job2 was killed (SIGKILL)" test "$small_rc" = 137
# The 3 s grace runs from the freeze, not from the start of the hook's step.
check "job2 stayed frozen for the 3 s grace: ${frozen2_ms} ms" test "$f2_ms" -gt 0 -a "$k2_ms" -gt 0 -a "$frozen2_ms" -ge 2900
check "the hook ran first for job2, then for job1" test "$hook1_cg" = vmtest/runaway/batch/job2 -a "$hook2_cg" = vmtest/runaway/batch/job1
# The hook's timestamp is taken once its shell has started, up to ~0.9 s
# after the fork in this loaded TCG guest; a freeze that did not wait for
# the hook would come before it (a negative gap), one that waited for the
# 30 s sleep far later.
check "job2's freeze came after its hook's timeout (2 s), not its 30 s sleep: ${gap1_ms} ms" test "$f2_ms" -gt 0 -a "$gap1_ms" -ge 1000 -a "$gap1_ms" -le 5000
check "job1's freeze came after its hook's timeout: ${gap2_ms} ms" test "$f1_ms" -gt 0 -a "$gap2_ms" -ge 1000 -a "$gap2_ms" -le 5000
check "the timed-out hooks' sleepers were killed" test "$hook_sleepers" = 0
check "the audit line names the preference" grep -q 'hint=prefer (trusted.governor.prefer)' "$RESULTS/governor.log"
check "the audit line has the hook's outcome" grep -q 'hook timed out after 2s' "$RESULTS/governor.log"
check "batch was frozen" test -n "$t_freeze"
check "batch was killed after being frozen" test -n "$t_kill"
check "batch died by SIGKILL" test "$batch_rc" = 137
check "no kernel OOM kill was needed" test "$oom_kills" = 0
check "service still running" kill -0 $svc
check "service never frozen" test "$svc_frozen" = "0 "
check "service memory.low was protected (256 MiB)" test "$svc_low" = $((256 << 20))
check "the governor logged the freeze" grep -qi 'freez' "$RESULTS/governor.log"
