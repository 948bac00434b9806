# Scenario "memhigh": a `memory_high` policy adapts memory.high to memory
# pressure. "tight" keeps 448 MiB hot under an operator's 256 MiB limit and
# thrashes against zram swap: the governor raises its memory.high until it
# fits and its pressure falls. "loose" idles at 160 MiB with no limit: the
# governor lowers memory.high toward usage + headroom, never below usage.
set -u
. "$VMTEST/lib.sh"
require_governor

observe=${MEMHIGH_SECONDS:-75}
check "zram swap" zram_swap 1G
cg_make memhigh/tight || fail "cgroup"
cg_make memhigh/loose || fail "cgroup"
echo $((256 << 20)) >"$CG/memhigh/tight/memory.high"
cg_run memhigh/tight vmload anon -size 448M -hot 100
cg_run memhigh/loose vmload anon -size 160M
sampler memhigh/tight
s1=$!
sampler memhigh/loose
s2=$!
sleep 8
p_before=$(csv_col "$RESULTS/memhigh_tight.csv" mem_full_avg10 | sort -g | tail -1)
log "tight: memory.full avg10 peak before the governor ${p_before}%"

governor_start "$VMTEST/policies/memhigh"
sleep "$observe"
t_high=$(cg_get memhigh/tight memory.high)
t_cur=$(cg_get memhigh/tight memory.current)
l_high=$(cg_get memhigh/loose memory.high)
l_cur=$(cg_get memhigh/loose memory.current)
p_end=$(tail -1 "$RESULTS/memhigh_tight.csv" | cut -d, -f8)
governor_stop TERM
# SIGTERM gives back the 256 MiB limit: the thrashing resumes.
check "SIGTERM restored tight's own memory.high" test "$(cg_get memhigh/tight memory.high)" = $((256 << 20))
kill $s1 $s2
wait $s1 $s2 2>/dev/null
raises=$(grep -c 'apps-high.*memhigh/tight.*knob=memory.high' "$RESULTS/governor.log")
lowers=$(grep -c 'apps-high.*memhigh/loose.*knob=memory.high' "$RESULTS/governor.log")
ooms=$(cat "$CG"/memhigh/*/memory.events | awk '/^oom_kill / { n += $2 } END { print n + 0 }')
log "tight: memory.high 256 -> $(mib "$t_high") MiB ($raises changes), usage $(mib "$t_cur") MiB, full avg10 ${p_before}% -> ${p_end}%"
log "loose: memory.high max -> $l_high ($lowers changes), usage $(mib "$l_cur") MiB"
summary "tight_high=256->$(mib "$t_high")MiB tight_full_avg10=${p_before}%->${p_end}% loose_high=max->$([ "$l_high" = max ] && echo max || echo "$(mib "$l_high")MiB") loose_usage=$(mib "$l_cur")MiB oom_kills=$ooms"
check "thrashing cgroup got memory.high raised" test "$t_high" -gt $((256 << 20))
check "its memory.full avg10 fell below the 5% trigger" awk -v p="$p_end" 'BEGIN { exit !(p < 5) }'
check "idle cgroup got a memory.high" test "$l_high" != max
check "idle cgroup's memory.high is not below its usage" test "$l_high" -ge "$l_cur"
check "no OOM kills" test "$ooms" = 0
