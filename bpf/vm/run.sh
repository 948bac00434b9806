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
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
imgdir=${VM_DIR:-$repo/build/vm}
out=$repo/build/bpf-vm
tests=${TESTS:-RealOOM|Attribution|Probe|Plumbing|MapFull}
vm_timeout=${VM_TIMEOUT:-600}
test_timeout=${TEST_TIMEOUT:-$((vm_timeout - 120))}

[ -f "$imgdir/image/rootfs.cpio" ] || VM_DIR=$imgdir "$repo/test/vm/build-image.sh"
img=$imgdir/image
command -v qemu-system-x86_64 >/dev/null || { apt-get update -qq && apt-get install -y -qq qemu-system-x86 cpio; }

rm -rf "$out" && mkdir -p "$out/ov/opt/bpftest" "$out/ov/etc/systemd/system/multi-user.target.wants"
(cd "$repo" && CGO_ENABLED=0 go test -c -o "$out/ov/opt/bpftest/bpf.test" ./bpf)
cat >"$out/ov/opt/bpftest/run.sh" <<SH
#!/bin/sh
echo "BPFTEST: kernel \$(uname -r)"
cd /opt/bpftest
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

# A guest that never reports (QEMU timed out, the guest hung) is booted once
# more, saying so loudly; a test that fails is a failure at once.
tries=${BPF_VM_TRIES:-2}
for ((try = 1; try <= tries; try++)); do
	echo "bpf-vm: booting $(cat "$img/kver") (TCG), tests: $tests (try $try of $tries)"
	set +e
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -smp 2 -m 2G \
		-nographic -no-reboot -nic none \
		-kernel "$img/vmlinuz" -initrd "$out/initrd.cpio" \
		-append "console=ttyS0 rdinit=/sbin/init panic=-1 loglevel=4 mitigations=off systemd.show_status=error" \
		</dev/null 2>&1 | stdbuf -oL tr -d '\r' >"$out/console.log"
	set -e
	{ grep -a 'BPFTEST: ' "$out/console.log" || true; } | sed 's/^.*BPFTEST: //' | tee "$out/test.log"
	grep -q '^--- FAIL\|^FAIL' "$out/test.log" && exit 1
	grep -q '^PASS' "$out/test.log" && exit 0
	cp "$out/console.log" "$out/console.try$try.log"
	echo "bpf-vm: try $try: no test result within ${vm_timeout}s; end of the console ($out/console.try$try.log):" >&2
	tail -n 30 "$out/console.log" >&2
done
echo "bpf-vm: no test result in $tries tries" >&2
exit 1
