# Scenario "bed": the test bed itself. The guest kernel offers what the
# governor needs (cgroup v2 controllers, memory.reclaim, PSI, BTF, freezer,
# cgroup.kill), and memory.high really bounds a cgroup that allocates past
# it (anonymous memory pushed to zram swap), with the stall showing in its
# memory.pressure.
set -u
. "$VMTEST/lib.sh"

ctrl=$(cat $CGROOT/cgroup.controllers)
log "root controllers: $ctrl"
for c in cpu io memory pids; do
	check "controller $c available" grep -qw "$c" <<<"$ctrl"
done
check "BTF at /sys/kernel/btf/vmlinux" test -s /sys/kernel/btf/vmlinux
for r in cpu memory io; do check "/proc/pressure/$r" test -r /proc/pressure/$r; done

cg_make bed/hog || fail "cannot create cgroup"
for f in memory.reclaim memory.high memory.low memory.min memory.pressure \
	cpu.pressure io.pressure cpu.max cpu.weight io.weight cgroup.freeze cgroup.kill \
	memory.events memory.swap.current; do
	check "cgroup file $f" test -e "$CG/bed/hog/$f"
done
check "zram swap" zram_swap 1G

high=$((192 << 20))
echo $high >"$CG/bed/hog/memory.high"
sampler bed/hog 500ms
spid=$!
cg_run bed/hog vmload grow -rate 16M -every 20ms -max 384M -hold 3s
wait $! || fail "allocator failed"
sleep 1
kill $spid
wait $spid 2>/dev/null

csv=$RESULTS/bed_hog.csv
peak=$(csv_col "$csv" memory_current | sort -n | tail -1)
swap=$(csv_col "$csv" swap_current | sort -n | tail -1)
stall=$(csv_col "$csv" mem_some_total_us | sort -n | tail -1)
log "peak memory.current $(mib "$peak") MiB, peak swap $(mib "$swap") MiB, memory stall ${stall} us"
echo 1 >"$CG/bed/hog/memory.reclaim" 2>/dev/null
check "memory.reclaim accepts a write" sh -c "echo 1M >$CG/bed/hog/memory.reclaim || [ \$? = 1 ]"
# memory.reclaim's swappiness= (6.11+), probed as the actuator does: an
# older kernel rejects the argument with EINVAL, a newer one reclaims (or
# says EAGAIN). bash's echo names the errno; dash's says "I/O error" for
# every failed write (which made this probe say yes on 6.1 until
# 2026-12-07).
if err=$( { echo '1M swappiness=0' >"$CG/bed/hog/memory.reclaim"; } 2>&1) || ! echo "$err" | grep -q 'Invalid argument'; then
	swappiness=yes
else
	swappiness=no
fi
log "memory.reclaim swappiness=: $swappiness ($(uname -r))"
summary "high_mib=$(mib $high) peak_mib=$(mib "$peak") swap_mib=$(mib "$swap") stall_ms=$((stall / 1000)) reclaim_swappiness=$swappiness"
check "memory.high bounds usage (peak <= high + 16 MiB)" test "$peak" -le $((high + (16 << 20)))
check "excess went to swap" test "$swap" -ge $((128 << 20))
check "stall shows in memory.pressure" test "$stall" -gt 0
