#!/bin/bash
# Guest side of the VM test bed, run by vmtest.service: prepares disks, runs
# each scenario listed in /opt/vmtest/scenarios.list with a timeout, packs
# /results into a tar written raw to the results disk and powers off.
#
# Disks (see run.sh): vda = results (raw tar), vdb = scratch (ext4 made here).
set -u
export PATH=/opt/vmtest/bin:/usr/sbin:/usr/bin:/sbin:/bin
export VMTEST=/opt/vmtest
results=/results
mkdir -p $results

say() { echo "VMTEST: $*" >/dev/console; }
# pack writes /results to the results disk. It runs after every scenario,
# so that when the guest kernel locks up or panics later, the host keeps
# what finished and boots again for the rest only (run.sh).
pack() { tar -C $results -cf /dev/vda . && sync; }
# The results are on their disk at DONE: power off at once (sysrq o),
# without stopping every unit first. That saves guest time, and stopping
# vmtest-cfspin.service would flip the cfs_bandwidth_used static key that
# TCG mishandles (README.md, "Guest lockups under TCG"). A bookworm guest
# once hung for 10 min in that shutdown.
finish() {
	say "packing results"
	pack
	say "DONE"
	# sysrq o queues the power-off: give it time before the fallback,
	# which would start stopping units.
	echo 1 >/proc/sys/kernel/sysrq 2>/dev/null && echo o >/proc/sysrq-trigger 2>/dev/null && sleep 30
	systemctl poweroff --no-block
}
trap finish EXIT

modprobe -a virtio_pci virtio_blk ext4 zram 2>&1 || say "modprobe failed"
for _ in $(seq 50); do [ -b /dev/vda ] && [ -b /dev/vdb ] && break; sleep 0.2; done
[ -b /dev/vda ] || { say "FATAL: results disk /dev/vda missing"; exit 1; }
if [ -b /dev/vdb ]; then
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 /dev/vdb &&
		mkdir -p /scratch && mount /dev/vdb /scratch || say "scratch disk setup failed"
fi

# Facts about the guest, for the record.
{
	echo "kernel=$(uname -r)"
	echo "cpus=$(nproc)"
	echo "memtotal_kb=$(awk '/MemTotal/ { print $2 }' /proc/meminfo)"
	echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
	echo "governor=$([ -x $VMTEST/bin/governor ] && $VMTEST/bin/governor version 2>&1 | head -1 || echo absent)"
} >$results/guest.txt
say "guest: $(tr '\n' ' ' <$results/guest.txt)"
# Heartbeat for the host's lockup watch (stallwatch.sh): a guest whose clock
# stopped prints nothing else.
(
	echo -1000 >/proc/$BASHPID/oom_score_adj
	while :; do echo "VMTEST-ALIVE $(date +%s)" >/dev/console; sleep 30; done
) &

# Two no-op probes on every tracepoint the sensors use, held for the whole
# run: the daemon's BPF attach and detach then patch no kernel text, which
# under multi-threaded TCG can lock the guest up (see vmload/pin.go).
pinlog=$results/pin-tracepoints.txt
vmload pin-tracepoints >"$pinlog" 2>&1 &
pin=$!
for _ in $(seq 100); do grep -q '^pinned' "$pinlog" && break; kill -0 $pin 2>/dev/null || break; sleep 0.2; done
say "$(grep '^pinned' "$pinlog" || echo "pin-tracepoints failed: $(tail -1 "$pinlog")")"
# One CPU quota held for the whole run, for the same reason. The scheduler
# checks the cfs_bandwidth_used static key in update_curr and
# enqueue_task_fair; the kernel patches those sites when the first cgroup
# in the system gets a cpu.max quota and when the last one loses it, which
# the scenarios (CPUQuota= units, the governor's cpu.max squeezes and their
# give-back) do again and again. A vCPU that runs a site being patched took
# an "Oops: int3" in update_curr and in enqueue_task_fair on trixie (CI of
# 68289f2 and two rehearsals before it, in stocknode). Bullseye's guest
# locked up at stocknode's start and bookworm's in coloc now and then,
# likely the same patch (both flip cpu.max there). With this quota in place the
# count never falls to zero and nothing is patched again. It never
# throttles (10 CPUs' worth); vmtest.slice is outside the scenarios'
# snapshots (stocknode's snap). It enables the cpu controller at the root
# for the whole run (stocknode's desktop leg skips its cpu-off check).
if systemd-run --quiet --unit=vmtest-cfspin.service --slice=vmtest.slice -p CPUQuota=1000% sleep infinity; then
	for _ in $(seq 50); do
		read -r q _ </sys/fs/cgroup/vmtest.slice/vmtest-cfspin.service/cpu.max 2>/dev/null && [ "$q" != max ] && break
		q=
		sleep 0.2
	done
	say "cfs bandwidth pin: vmtest.slice/vmtest-cfspin.service cpu.max quota ${q:-not set}"
else
	say "cfs bandwidth pin: systemd-run failed"
fi

timeout_s=$(cat $VMTEST/timeout 2>/dev/null || echo 600)
# The scenarios' knobs from the host (run.sh).
if [ -s $VMTEST/env ]; then set -a; . $VMTEST/env; set +a; fi
while read -r name; do
	[ -n "$name" ] || continue
	script=$VMTEST/scenarios/$name.sh
	out=$results/$name
	mkdir -p "$out"
	say "BEGIN $name"
	start=$(date +%s)
	(cd "$out" && RESULTS=$out timeout -k 10 "$timeout_s" bash "$script") >"$out/log.txt" 2>&1
	rc=$?
	dur=$(($(date +%s) - start))
	case $rc in
	0) status=PASS ;;
	77) status=SKIP ;;
	124 | 137) status=FAIL; echo "scenario timed out after ${timeout_s}s" >>"$out/log.txt" ;;
	*) status=FAIL ;;
	esac
	echo "$status $rc $dur" >"$out/status"
	say "END $name $status rc=$rc ${dur}s $(head -1 "$out/summary.txt" 2>/dev/null)"
	# Leave no test cgroups or governor behind for the next scenario.
	. $VMTEST/lib.sh && cg_cleanup_all
	pack || say "packing results after $name failed"
done <$VMTEST/scenarios.list
