#!/bin/bash
# Runs the bpf package's tests in the VM test bed's Debian guest (pure cgroup
# v2 with the memory controller, Debian's kernel): the real OOM kill and memcg
# reclaim test, the oom:mark_victim pid layout of kernels before 6.8, and the
# attribution tests on that kernel. Reuses the guest image that
# test/vm/build-image.sh caches (building it if needed); its own overlay,
# initrd and console log go to build/bpf-vm/.
#
#   bpf/vm/run.sh                       # TESTS='RealOOM|Attribution|Probe|Plumbing'
#   TESTS=. bpf/vm/run.sh               # every test
#   DISTRO=bullseye bpf/vm/run.sh       # on Debian 11's 5.10 (or trixie's 6.12);
#                                       # image in build/vm-DISTRO unless VM_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
distro=${DISTRO:-bookworm}
case $distro in
bookworm) imgdir=${VM_DIR:-$repo/build/vm} ;;
*) imgdir=${VM_DIR:-$repo/build/vm-$distro} ;;
esac
out=$repo/build/bpf-vm
tests=${TESTS:-RealOOM|Attribution|Probe|Plumbing|MapFull|Moves|ReadSlot|FastPath}
vm_timeout=${VM_TIMEOUT:-600}
test_timeout=${TEST_TIMEOUT:-$((vm_timeout - 120))}

VM_SUITE=$distro VM_DIR=$imgdir "$repo/test/vm/build-image.sh"
img=$imgdir/image
command -v qemu-system-x86_64 >/dev/null || { apt-get update -qq && apt-get install -y -qq qemu-system-x86 cpio; }

rm -rf "$out" && mkdir -p "$out/ov/opt/bpftest" "$out/ov/etc/systemd/system/multi-user.target.wants"
(cd "$repo" && CGO_ENABLED=0 go test -c -o "$out/ov/opt/bpftest/bpf.test" ./bpf)
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$out/ov/opt/bpftest/vmload" ./test/vm/vmload)
cat >"$out/ov/opt/bpftest/run.sh" <<SH
#!/bin/sh
echo "BPFTEST: kernel \$(uname -r)"
# Heartbeat for the host's lockup watch (test/vm/stallwatch.sh).
(while :; do echo "VMTEST-ALIVE \$(date +%s)"; sleep 30; done) &
cd /opt/bpftest
# Two no-op probes on each of the sensors' tracepoints, so that the tests'
# attach and detach patch no kernel text (see test/vm/vmload/pin.go).
./vmload pin-tracepoints >/tmp/pin.txt 2>&1 &
for i in \$(seq 100); do grep -q '^pinned' /tmp/pin.txt && break; sleep 0.2; done
echo "BPFTEST: \$(grep '^pinned' /tmp/pin.txt || echo "pin-tracepoints failed: \$(tail -1 /tmp/pin.txt)")"
# Streamed to the console line by line, so a test that hangs shows where;
# the test timeout (below the VM's) makes a hang end with a goroutine dump.
{ ./bpf.test -test.v -test.count=1 -test.timeout=${test_timeout}s -test.run '$tests' 2>&1; echo "EXIT \$?"; } | sed -u 's/^/BPFTEST: /'
echo "BPFTEST: DONE"
systemctl poweroff --no-block
SH
chmod 755 "$out/ov/opt/bpftest/run.sh"
cat >"$out/ov/etc/systemd/system/bpftest.service" <<'UNIT'
[Unit]
Description=governor bpf tests
After=basic.target
DefaultDependencies=no
Conflicts=shutdown.target

[Service]
Type=oneshot
ExecStart=/opt/bpftest/run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -s ../bpftest.service "$out/ov/etc/systemd/system/multi-user.target.wants/bpftest.service"
(cd "$out/ov" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$out/overlay.cpio"
cat "$img/rootfs.cpio" "$out/overlay.cpio" >"$out/initrd.cpio"

# A guest that never reports (it locked up, or QEMU timed out) is booted
# again, saying so loudly; a test that fails is a failure at once.
# shellcheck source=../../test/vm/stallwatch.sh
. "$repo/test/vm/stallwatch.sh"
tries=${BPF_VM_TRIES:-3}
for ((try = 1; try <= tries; try++)); do
	echo "bpf-vm: booting $(cat "$img/kver") (TCG), tests: $tests (try $try of $tries)"
	: >"$out/console.log"
	watcher=$(STALL_START='BPFTEST: kernel' STALL_DONE='BPFTEST: DONE' stall_watch "$out/console.log" "$out/qemu.pid" "$out/stall")
	set +e
	# loglevel=5: lockup reports come with their backtraces.
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -smp 2 -m 2G \
		-nographic -no-reboot -nic none -pidfile "$out/qemu.pid" \
		-kernel "$img/vmlinuz" -initrd "$out/initrd.cpio" \
		-append "console=ttyS0 rdinit=/sbin/init panic=-1 loglevel=5 mitigations=off tsc=reliable systemd.show_status=error" \
		</dev/null 2>&1 | stdbuf -oL tr -d '\r' >"$out/console.log"
	set -e
	kill "$watcher" 2>/dev/null || true
	{ grep -a 'BPFTEST: ' "$out/console.log" || true; } | sed 's/^.*BPFTEST: //' | tee "$out/test.log"
	grep -q '^--- FAIL\|^FAIL' "$out/test.log" && exit 1
	grep -q '^PASS' "$out/test.log" && exit 0
	cp "$out/console.log" "$out/console.try$try.log"
	if [ -f "$out/stall" ]; then
		echo "bpf-vm: try $try: the guest kernel locked up ($(cat "$out/stall")); console: $out/console.try$try.log" >&2
		grep -a -m1 -A 40 'BUG: soft lockup\|detected stalls on CPUs' "$out/console.log" | grep -a 'Call Trace\|+0x\|RIP' | head -30 >&2
	else
		echo "bpf-vm: try $try: no test result within ${vm_timeout}s; end of the console ($out/console.try$try.log):" >&2
		tail -n 30 "$out/console.log" >&2
	fi
done
echo "bpf-vm: no test result in $tries tries" >&2
exit 1
