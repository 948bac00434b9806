# Scenario "coloc": batch co-location. A periodic service (1 ms of CPU every
# 10 ms) runs alone, next to two batch CPU burners, and next to them with
# the governor running a `suppress` policy that squeezes the batch's
# cpu.weight and cpu.max while the service waits for CPU. Figures: the
# service's p99 latency in each case and the batch's throughput with and
# without the governor. Asserted: the squeeze happens, is given back on
# SIGTERM, and the batch still progresses. The latencies are reported, not
# asserted: under TCG on a shared 2-core host their noise is larger than
# the effect (latency_improved says which way it went).
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
w_squeezed=$(cg_get coloc/batch cpu.weight)
m_squeezed=$(cg_get coloc/batch cpu.max)
cg_run coloc/service vmload latency -for "${leg}s" >"$RESULTS/with_batch_gov.txt"
wait $!
wait $b
governor_stop TERM
w_after=$(cg_get coloc/batch cpu.weight)
log "with batch + governor: $(cat "$RESULTS/with_batch_gov.txt"); batch $(cat "$RESULTS/batch_gov.txt")"
log "batch cpu.weight while squeezed $w_squeezed, cpu.max '$m_squeezed'; after the governor stopped $w_after"

a=$(p99 "$RESULTS/alone.txt") wb=$(p99 "$RESULTS/with_batch.txt") wg=$(p99 "$RESULTS/with_batch_gov.txt")
o1=$(ops "$RESULTS/batch_nogov.txt") o2=$(ops "$RESULTS/batch_gov.txt")
summary "p99_ms alone=$((a / 1000)).$((a % 1000 / 100)) batch=$((wb / 1000)).$((wb % 1000 / 100)) batch+gov=$((wg / 1000)).$((wg % 1000 / 100)) batch_mops/s nogov=$((o1 / 1000000)) gov=$((o2 / 1000000)) squeezed_weight=$w_squeezed latency_improved=$([ "$wg" -lt "$wb" ] && echo yes || echo no)"
check "the governor squeezed the batch's cpu.weight" test "$w_squeezed" -lt 100
check "and gave it back on SIGTERM" test "$w_after" = 100
check "batch still makes progress under the governor" test "$o2" -gt 0
