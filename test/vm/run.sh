#!/bin/bash
# Host side of the VM test bed: builds (or reuses) the cached image, builds
# the governor and the vmload helper, appends them with the scenarios as a
# second initramfs archive, boots the Debian kernel under QEMU (TCG), and
# collects the results the guest leaves on a raw virtio disk.
#
# Environment:
#   SCENARIOS    space-separated scenario names (default: all, in order;
#                on bullseye the ones its kernel can carry)
#   BLAME_*, COLOC_*, MEMHIGH_*, REACTION_*, RECLAIM_*, RECLAIMANON_*, SELFTHROTTLE_*, STOCKNODE_*
#                passed to the guest's scenarios (leg lengths, runs)
#   VM_MEM       guest memory (default 2G)     VM_SMP  guest CPUs (default 2)
#   VM_TIMEOUT   hard limit on the QEMU process in seconds (default 1800)
#   SCENARIO_TIMEOUT  per-scenario limit inside the guest (default 600)
#   DISTRO       guest release: bullseye, bookworm (default) or trixie
#   VM_DIR       work and cache directory (default <repo>/build/vm, or
#                <repo>/build/vm-DISTRO for a release other than bookworm)
#   VM_APPEND    extra kernel command line arguments
#   VM_TRIES     boots when the guest kernel locks up or panics (default 3)
#   ARTIFACTS_DIR  where each scenario's results, flight recordings and
#                their HTML reports are copied, as DISTRO/SCENARIO/
#                (default <repo>/build/artifacts; see artifacts.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
distro=${DISTRO:-${VM_SUITE:-bookworm}}
case $distro in
bookworm) vmdir=${VM_DIR:-$repo/build/vm} ;;
bullseye | trixie) vmdir=${VM_DIR:-$repo/build/vm-$distro} ;;
*) echo "vm-test: error: DISTRO=$distro: bullseye, bookworm or trixie" >&2; exit 1 ;;
esac
mem=${VM_MEM:-2G}
smp=${VM_SMP:-2}
vm_timeout=${VM_TIMEOUT:-1800}
scenario_timeout=${SCENARIO_TIMEOUT:-600}
default_order="bed lifecycle reclaim memhigh runaway coloc"

log() { echo "vm-test: $*"; }
die() { echo "vm-test: error: $*" >&2; exit 1; }

t0=$(date +%s)
VM_SUITE=$distro VM_DIR=$vmdir "$here/build-image.sh"
img=$vmdir/image
t_image=$(($(date +%s) - t0))

# Scenarios: the requested ones, the release's list, or every script,
# known ones first. Debian 11 (5.10) has no memory.reclaim, cgroup.kill,
# cpu.idle or systemd-oomd: bed, reclaim, runaway, coloc and reaction
# cannot pass there; reclaimanon runs its degradation leg (README.md,
# Releases).
release_list=
case $distro in
bullseye) release_list="lifecycle memhigh systemd stocknode reclaimanon package podman" ;;
esac
if [ -n "${SCENARIOS:-}" ]; then
	list=$SCENARIOS
elif [ -n "$release_list" ]; then
	list=
	for n in $release_list; do [ -f "$here/scenarios/$n.sh" ] && list="$list $n"; done
	list=${list# }
else
	list=$default_order
	for f in "$here"/scenarios/*.sh; do
		n=$(basename "$f" .sh)
		case " $list " in *" $n "*) ;; *) list="$list $n" ;; esac
	done
fi
for n in $list; do
	[ -f "$here/scenarios/$n.sh" ] || die "no scenario $n (test/vm/scenarios/$n.sh)"
done

# Per-run overlay: binaries, scenarios, policies and the systemd unit.
ov=$vmdir/overlay
rm -rf "$ov"
mkdir -p "$ov/opt/vmtest/bin" "$ov/etc/systemd/system/multi-user.target.wants"
cd "$repo"
export CGO_ENABLED=0
go build -trimpath -o "$ov/opt/vmtest/bin/vmload" ./test/vm/vmload
if [ -d cmd/governor ]; then
	log "building bin/governor"
	go build -trimpath -o bin/governor ./cmd/governor || die "governor does not build"
	cp bin/governor "$ov/opt/vmtest/bin/governor"
else
	log "cmd/governor does not exist yet: scenarios that need the daemon will skip"
fi
# ---- Debian package and container image (package, podman scenarios) ----
# Built on the host as `make deb` / `make image` build them, only when a
# scenario asks for them, into the overlay's /opt/vmtest/deb and
# /opt/vmtest/oci. The guest has no network: it installs from these files.
if [ -x bin/governor ]; then
	version=$(git describe --always --dirty 2>/dev/null || echo dev)
	case " $list " in *" package "*)
		mkdir -p "$ov/opt/vmtest/deb"
		go build -trimpath -ldflags "-X main.version=$version" -o "$vmdir/governor.pkg" ./cmd/governor
		deb=$(packaging/deb/build.sh "$vmdir/governor.pkg" "$version" "$ov/opt/vmtest/deb") || die "packaging/deb/build.sh failed"
		log "staged $(basename "$deb") ($(($(stat -c %s "$deb") / 1024)) KiB)"
		;;
	esac
	case " $list " in *" podman "*)
		mkdir -p "$ov/opt/vmtest/oci"
		go build -trimpath -ldflags "-X main.version=$version" -o "$vmdir/governor.oci" ./cmd/governor
		go run ./cmd/governor-image -binary "$vmdir/governor.oci" -version "$version" -arch "$(go env GOARCH)" \
			-revision "$(git rev-parse HEAD 2>/dev/null)" -epoch "$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
			-out "$ov/opt/vmtest/oci/governor.tar" || die "cmd/governor-image failed"
		cp examples/kubernetes/governor-daemonset.yaml "$ov/opt/vmtest/oci/"
		log "staged the OCI archive ($(($(stat -c %s "$ov/opt/vmtest/oci/governor.tar") / 1024)) KiB)"
		;;
	esac
fi
# ---- end of package and image ----
cp "$here/guest/runner.sh" "$here/guest/lib.sh" "$ov/opt/vmtest/"
cp -r "$here/scenarios" "$ov/opt/vmtest/scenarios"
[ -d "$here/policies" ] && cp -r "$here/policies" "$ov/opt/vmtest/policies"
# What `make install` installs, unmodified (the stocknode scenario).
mkdir -p "$ov/opt/vmtest/examples"
cp -r examples/governor.service examples/governor.service.d examples/*.hcl "$ov/opt/vmtest/examples/"
cp "$here/guest/vmtest.service" "$ov/etc/systemd/system/"
ln -s ../vmtest.service "$ov/etc/systemd/system/multi-user.target.wants/vmtest.service"
echo "$scenario_timeout" >"$ov/opt/vmtest/timeout"
# The scenarios' own knobs (leg lengths, runs) reach the guest: every
# variable named BLAME_*, COLOC_*, MEMHIGH_*, REACTION_*, RECLAIM_*, RECLAIMANON_*,
# SELFTHROTTLE_* or STOCKNODE_* in the environment.
env | grep -E '^(BLAME|COLOC|MEMHIGH|REACTION|RECLAIM|RECLAIMANON|SELFTHROTTLE|STOCKNODE)_[A-Z0-9_]*=[A-Za-z0-9._-]*$' >"$ov/opt/vmtest/env" || true
[ -s "$ov/opt/vmtest/env" ] && log "scenario knobs: $(tr '\n' ' ' <"$ov/opt/vmtest/env")"
chmod -R go-w "$ov"
# pack_initrd SCENARIO...: the image's root plus the overlay, with the
# scenarios this boot runs.
pack_initrd() {
	boot_list="$*"
	printf '%s\n' "$@" >"$ov/opt/vmtest/scenarios.list"
	chmod go-w "$ov/opt/vmtest/scenarios.list"
	(cd "$ov" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$vmdir/overlay.cpio"
	cat "$img/rootfs.cpio" "$vmdir/overlay.cpio" >"$vmdir/initrd.cpio"
}
pack_initrd $list
# Results of scenarios that finished in a boot whose kernel later locked
# up or panicked (the guest packs its results after each scenario).
kept=$vmdir/results.kept
rm -rf "$kept"
mkdir -p "$kept"

# shellcheck source=stallwatch.sh
. "$here/stallwatch.sh"
console=$vmdir/console.log
tries=${VM_TRIES:-3}
t1=$(date +%s)
for ((try = 1; try <= tries; try++)); do
	# Disks, in this order: vda carries the results back (a raw tar), vdb is
	# scratch (the guest makes an ext4 file system on it).
	rm -f "$vmdir/results.img" "$vmdir/scratch.img"
	truncate -s 256M "$vmdir/results.img"
	truncate -s 2G "$vmdir/scratch.img"

	log "booting $(cat "$img/kver") with ${mem} RAM, $smp CPUs (TCG); scenarios: $boot_list (try $try of $tries)"
	log "console: $console"
	: >"$console"
	watcher=$(stall_watch "$console" "$vmdir/qemu.pid" "$vmdir/stall")
	set +e
	# loglevel=5: a lockup report comes with its backtraces.
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem" \
		-nographic -no-reboot -nic none -pidfile "$vmdir/qemu.pid" \
		-kernel "$img/vmlinuz" -initrd "$vmdir/initrd.cpio" \
		-append "console=ttyS0 rdinit=/sbin/init panic=-1 loglevel=5 mitigations=off tsc=reliable systemd.show_status=error ${VM_APPEND:-}" \
		-drive "file=$vmdir/results.img,format=raw,if=virtio,cache=unsafe" \
		-drive "file=$vmdir/scratch.img,format=raw,if=virtio,cache=unsafe" \
		</dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$console" |
		grep --line-buffered -E 'VMTEST:|Kernel panic|end Kernel panic' | sed -u 's/^/  guest| /'
	qrc=${PIPESTATUS[0]}
	set -e
	kill "$watcher" 2>/dev/null || true
	if grep -q '^no power-off' "$vmdir/stall" 2>/dev/null; then
		log "the guest did not power off after its scenarios: QEMU stopped ($(cat "$vmdir/stall")); the results were packed before"
		qrc=0
		break
	elif [ -f "$vmdir/stall" ]; then
		why="locked up ($(cat "$vmdir/stall"))"
	elif grep -q 'Kernel panic' "$console"; then
		why="panicked"
	else
		break
	fi
	# A guest kernel that locked up or panicked says nothing about the
	# scenario it was running: boot again, loudly, with the backtrace, for
	# that scenario and the ones after it. Those that finished before
	# keep their results. A panic that comes back every time still fails
	# the run below.
	cp "$console" "$vmdir/console.try$try.log"
	echo "vm-test: try $try: the guest kernel $why; console: $vmdir/console.try$try.log" >&2
	grep -a -m1 -A 40 'BUG: soft lockup\|detected stalls on CPUs\|BUG: \|Oops' "$console" | grep -a 'Call Trace\|+0x\|RIP\|BUG\|Oops' | head -30 >&2 || true
	[ "$try" -lt "$tries" ] || [ "$why" = panicked ] || die "the guest kernel locked up in all $tries tries"
	[ "$try" -lt "$tries" ] || break
	tmp=$vmdir/results.try$try
	rm -rf "$tmp"
	mkdir -p "$tmp"
	tar -xf "$vmdir/results.img" -C "$tmp" 2>/dev/null || true
	rest=
	for n in $list; do
		if [ -f "$tmp/$n/status" ] && [ ! -e "$kept/$n" ]; then
			mv "$tmp/$n" "$kept/$n"
		elif [ ! -e "$kept/$n" ]; then
			rest="$rest $n"
		fi
	done
	rm -rf "$tmp"
	rest=${rest# }
	[ -n "$rest" ] || rest=$list # it locked up packing the last results
	[ "$rest" = "$list" ] || log "kept the results of: $(ls "$kept" | tr '\n' ' ')"
	pack_initrd $rest
done
t_boot=$(($(date +%s) - t1))

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	tail -40 "$console" >&2
	die "QEMU killed after ${vm_timeout}s (VM_TIMEOUT); full console: $console"
fi
if grep -q 'Kernel panic' "$console"; then
	grep -B 20 -A 5 'Kernel panic' "$console" | tail -40 >&2
	die "guest kernel panicked; full console: $console"
fi
[ "$qrc" = 0 ] || { tail -40 "$console" >&2; die "QEMU exited with status $qrc"; }
grep -q 'VMTEST: DONE' "$console" || {
	tail -40 "$console" >&2
	die "guest never finished its scenarios; full console: $console"
}

res=$vmdir/results
rm -rf "$res"
mkdir -p "$res"
tar -xf "$vmdir/results.img" -C "$res" || die "no results on the results disk"
for d in "$kept"/*; do
	[ -d "$d" ] && [ ! -e "$res/$(basename "$d")" ] && mv "$d" "$res/"
done

# known_reason NAME: why NAME is expected to fail, if it is listed (in
# known-failures.txt, or known-failures-DISTRO.txt for one release).
known_reason() {
	cat "$here/known-failures.txt" "$here/known-failures-$distro.txt" 2>/dev/null |
		awk -v n="$1" '$1 == n { $1 = ""; sub(/^ +/, ""); print; exit }'
}

# result NAME: PASS, FAIL, SKIP, or XFAIL / XPASS for known failures.
result() {
	local st
	st=$(cut -d' ' -f1 "$res/$1/status" 2>/dev/null || echo FAIL)
	if [ -n "$(known_reason "$1")" ]; then
		case $st in FAIL) st=XFAIL ;; PASS) st=XPASS ;; esac
	fi
	echo "$st"
}

# Replay: each recording a scenario's governor made (lib.sh's
# governor_start), replayed on the host with the policy it ran, must take
# the recorded actions (governor replay --check). REPLAY_CHECK names the
# scenarios checked.
replay_check=${REPLAY_CHECK-coloc memhigh}
declare -A replayed
failed=0
for n in $replay_check; do
	case " $list " in *" $n "*) ;; *) continue ;; esac
	[ "$(result "$n")" = PASS ] || continue
	runs=0 actions=0
	for pf in "$res/$n"/record/*.policy; do
		[ -f "$pf" ] || continue
		pol=$(cat "$pf")
		hostpol=$here/policies/${pol#/opt/vmtest/policies/}
		out=${pf%.policy}.replay.txt
		if ! bin/governor replay --check --config "$hostpol" "${pf%.policy}" >"$out" 2>&1; then
			echo "===== scenario $n: the replay of recording $(basename "${pf%.policy}") differs from it ====="
			head -40 "$out"
			failed=1
			replayed[$n]=replay=FAIL
			continue 2
		fi
		runs=$((runs + 1))
		a=$(sed -n 's/.* \([0-9]*\) actions alike$/\1/p' "$out")
		actions=$((actions + ${a:-0}))
	done
	[ "$runs" -gt 0 ] && replayed[$n]="replay=${runs}runs/${actions}actions"
done

# Reports and artifacts (after the replays, whose outputs they keep):
# every recording gets its `governor report`
# (RESULTS/SCENARIO/record/N.report.html); each scenario's results go to
# ARTIFACTS_DIR/DISTRO/SCENARIO, with the guest's console log. A report
# that fails fails the run.
# shellcheck source=artifacts.sh
. "$here/artifacts.sh"
art=${ARTIFACTS_DIR:-$repo/build/artifacts}/$distro
rm -rf "$art"
vm_artifacts "$res" "$art" "$repo/bin/governor" $list || failed=1
cp "$console" "$art/console.log"

for n in $list; do
	r=$(result "$n")
	case $r in FAIL | XFAIL) ;; *) continue ;; esac
	[ "$r" = FAIL ] && failed=1
	echo "===== scenario $n failed ($r, exit $(cut -d' ' -f2 "$res/$n/status" 2>/dev/null)); its log: ====="
	[ "$r" = XFAIL ] && echo "(known failure: $(known_reason "$n"))"
	cat "$res/$n/log.txt" 2>/dev/null || echo "(no log)"
	if [ -f "$res/$n/governor.log" ]; then
		echo "----- $n: governor.log without debug lines, last 30 -----"
		grep -v '\[DEBUG\]' "$res/$n/governor.log" | tail -30
	fi
done

echo
echo "VM scenarios ($distro, $(cat "$img/kver"), results in $res):"
printf '  %-12s %-6s %6s  %s\n' SCENARIO RESULT TIME FIGURES
for n in $list; do
	printf '  %-12s %-6s %5ss  %s\n' "$n" "$(result "$n")" "$(cut -d' ' -f3 "$res/$n/status" 2>/dev/null || echo -)" \
		"$(head -1 "$res/$n/summary.txt" 2>/dev/null)${replayed[$n]:+ ${replayed[$n]}}$([ "${vm_reports[$n]:-0}" = 0 ] || echo " report=${vm_reports[$n]}")"
done
for n in $list; do
	[ "$(result "$n")" = XPASS ] && echo "  note: $n passes but is listed in test/vm/known-failures.txt: remove it there"
done
echo "  artifacts (results, recordings, reports, console): $art"
echo "  image ${t_image}s, boot+scenarios ${t_boot}s, total $(($(date +%s) - t0))s"
exit $failed
