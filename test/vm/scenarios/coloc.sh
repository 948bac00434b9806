# Scenario "coloc": batch co-location. A periodic service (1 ms of CPU every
# 10 ms) runs alone, next to two batch CPU burners, and next to them with
# the governor running a policy that makes the batch SCHED_IDLE among its
# siblings (cpu.idle) and cuts its cpu.max while the service waits for
# CPU. Figures: the service's p99 latency in each case and the batch's throughput with and
# without the governor. Asserted: the squeeze happens and is given back on
# SIGTERM and the batch still progresses. The p99 cut (issue 4 asks for at
# least 2x) is reported as p99_cut, not asserted: on this shared host under
# TCG two runs gave 7.8x and 1.6x, the host's noise being as large as the
# effect; asserting it needs interleaved, repeated legs (to do).
set -u
. "$VMTEST/lib.sh"
require_governor

leg=${COLOC_LEG_SECONDS:-20}
cg_make coloc/service || fail "cgroup"
cg_make coloc/batch || fail "cgroup"

# p99 FILE: the p99_us figure from a vmload latency report.
p99() { sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$1"; }
ops() { sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' "$1"; }

log "leg 1: service alone"
cg_run coloc/service vmload latency -for "${leg}s" >"$RESULTS/alone.txt"
wait $!
log "alone: $(cat "$RESULTS/alone.txt")"

log "leg 2: service with batch"
cg_run coloc/batch vmload burn -threads 2 -for "$((leg + 2))s" >"$RESULTS/batch_nogov.txt"
b=$!
sleep 1
cg_run coloc/service vmload latency -for "${leg}s" >"$RESULTS/with_batch.txt"
wait $!
wait $b
log "with batch: $(cat "$RESULTS/with_batch.txt"); batch $(cat "$RESULTS/batch_nogov.txt")"

log "leg 3: service with batch and the governor"
governor_start "$VMTEST/policies/coloc"
# The service runs throughout (its pressure is the trigger); only the part
# after the squeeze has settled is measured.
settle=25
cg_run coloc/batch vmload burn -threads 2 -for "$((settle + leg + 2))s" >"$RESULTS/batch_gov.txt"
b=$!
sleep 1
cg_run coloc/service vmload latency -for "${settle}s" >"$RESULTS/settle.txt"
wait $!
i_squeezed=$(cg_get coloc/batch cpu.idle)
m_squeezed=$(cg_get coloc/batch cpu.max)
cg_run coloc/service vmload latency -for "${leg}s" >"$RESULTS/with_batch_gov.txt"
wait $!
wait $b
governor_stop TERM
i_after=$(cg_get coloc/batch cpu.idle)
m_after=$(cg_get coloc/batch cpu.max)
log "with batch + governor: $(cat "$RESULTS/with_batch_gov.txt"); batch $(cat "$RESULTS/batch_gov.txt")"
log "batch cpu.idle while squeezed $i_squeezed, cpu.max '$m_squeezed'; after the governor stopped cpu.idle $i_after, cpu.max '$m_after'"

a=$(p99 "$RESULTS/alone.txt") wb=$(p99 "$RESULTS/with_batch.txt") wg=$(p99 "$RESULTS/with_batch_gov.txt")
o1=$(ops "$RESULTS/batch_nogov.txt") o2=$(ops "$RESULTS/batch_gov.txt")
summary "p99_ms alone=$((a / 1000)).$((a % 1000 / 100)) batch=$((wb / 1000)).$((wb % 1000 / 100)) batch+gov=$((wg / 1000)).$((wg % 1000 / 100)) batch_mops/s nogov=$((o1 / 1000000)) gov=$((o2 / 1000000)) squeezed_idle=$i_squeezed squeezed_max=${m_squeezed% *} p99_cut=$((wb / (wg > 0 ? wg : 1))).$((wb * 10 / (wg > 0 ? wg : 1) % 10))x"
check "the governor made the batch SCHED_IDLE (cpu.idle 1)" test "$i_squeezed" = 1
check "and cut its cpu.max" test "$m_squeezed" != "max 100000"
check "and gave both back on SIGTERM" test "$i_after" = 0 -a "$m_after" = "max 100000"
check "batch still makes progress under the governor" test "$o2" -gt 0
