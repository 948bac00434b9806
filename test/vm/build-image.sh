#!/bin/bash
# Builds the cached VM image: the Debian kernel (vmlinuz + a pruned module
# tree) and a debootstrap root with systemd, packed as an initramfs, for
# VM_SUITE=bullseye|bookworm|trixie (default bookworm: kernel 5.10/6.1/6.12,
# systemd 247/252/257).
# The image holds no governor code: run.sh appends a second cpio archive with
# the binary and scenarios on every run, so this cache survives code changes.
#
# Output (VM_DIR, default <repo>/build/vm, build/vm-SUITE for the others): image/vmlinuz, image/rootfs.cpio,
# image/key. Rebuilt only when the key changes: this script, packages.txt and
# the kernel package version. FORCE=1 rebuilds anyway.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
suite=${VM_SUITE:-bookworm}
if [ "$suite" = bookworm ]; then vmdir=${VM_DIR:-$repo/build/vm}; else vmdir=${VM_DIR:-$repo/build/vm-$suite}; fi
img=$vmdir/image

log() { echo "vm-image: $*"; }
die() { echo "vm-image: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, device nodes)"
"$here/host-deps.sh"
export PATH=$PATH:/usr/sbin:/sbin

# Kernel modules the guest needs: the virtio disks, ext4 for the scratch
# file system, zram for swap scenarios. Dependencies are resolved from the
# package's own module tree.
modules=(virtio_pci virtio_blk ext4 crc32c_generic crc32c_intel zram)

case $suite in bullseye | bookworm | trixie) ;; *) die "VM_SUITE=$suite: bullseye, bookworm or trixie" ;; esac

# host_uri SUITE: the first archive URI the host's apt sources use for
# SUITE (one-line .list and deb822 .sources alike). The mirror is the host's
# own configuration, never a name written here.
host_uri() {
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v '^#' |
			sed -e 's/#.*//' -e 's/\[[^]]*\]//' | awk -v s="$1" '$1 == "deb" && $3 == s { print $2; exit }'
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk -v s="$1" 'BEGIN { RS = "" } {
				u = ""; ok = 0; deb = 0
				n = split($0, line, "\n")
				for (i = 1; i <= n; i++) {
					k = line[i]; sub(/:.*/, "", k)
					v = line[i]; sub(/^[^:]*:[ \t]*/, "", v)
					m = split(v, w, /[ \t]+/)
					if (k == "URIs") u = w[1]
					if (k == "Types") for (j = 1; j <= m; j++) if (w[j] == "deb") deb = 1
					if (k == "Suites") for (j = 1; j <= m; j++) if (w[j] == s) ok = 1
				}
				if (u != "" && ok && deb) { print u; exit }
			}' "$f"
		done
	} | head -1 || true # (pipefail: a reader that stops early is no error)
}

# Kernel package of the suite. The host's own suite uses the host's lists;
# another suite gets private apt lists and caches under $vmdir/apt-$suite
# (the host's apt state is left alone).
host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt_opts=()
mirror=
if [ "$suite" != "$host_suite" ]; then
	mirror=$(host_uri "$host_suite")
	[ -n "$mirror" ] || die "cannot find the host's Debian mirror for $host_suite in /etc/apt/sources.list(.d)"
	secmirror=$(host_uri "$host_suite-security")
	ad=$vmdir/apt-$suite
	mkdir -p "$ad/lists/partial" "$ad/cache/archives/partial" "$ad/sources.list.d"
	{
		echo "deb $mirror $suite main"
		[ -z "$secmirror" ] || echo "deb $secmirror $suite-security main"
	} >"$ad/sources.list"
	apt_opts=(-o "Dir::State::Lists=$ad/lists" -o "Dir::Etc::SourceList=$ad/sources.list"
		-o "Dir::Etc::SourceParts=$ad/sources.list.d" -o "Dir::Cache=$ad/cache")
fi

# Empty when the lists do not know the package yet (on a fresh checkout the
# private lists do not exist and apt-cache fails: no error under set -e).
kernel_pkg() {
	apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true
}
kpkg=$(kernel_pkg)
if [ -z "$kpkg" ]; then
	log "refreshing package lists${mirror:+ for $suite (private lists in $vmdir/apt-$suite)}"
	apt-get "${apt_opts[@]}" update -q 2>&1 | grep -v "^Get:\|^Hit:\|^Reading\|^Fetched" >&2 || true
	kpkg=$(kernel_pkg)
fi
[ -n "$kpkg" ] || die "cannot resolve the kernel package behind linux-image-amd64 in $suite"
kpkgver=$(apt-cache "${apt_opts[@]}" policy "$kpkg" | awk '/Candidate:/ { print $2 }')
kver=${kpkg#linux-image-}

packages=$(grep -v '^[[:space:]]*\(#\|$\)' "$here/packages.txt" |
	awk -v s="$suite" 'NF == 1 || index("," $2 ",", "," s ",") { print $1 }' | sort -u | paste -sd, -)
key=$({
	cat "$here/build-image.sh" "$here/packages.txt"
	echo "$suite $kpkg $kpkgver ${modules[*]}"
} | sha256sum | cut -c1-16)

if [ -z "${FORCE:-}" ] && [ -f "$img/key" ] && [ "$(cat "$img/key")" = "$key" ] &&
	[ -s "$img/vmlinuz" ] && [ -s "$img/rootfs.cpio" ]; then
	log "cached image $key ($kpkg $kpkgver) is up to date"
	exit 0
fi

start=$(date +%s)
log "building image $key: $suite + [$packages], kernel $kpkg $kpkgver"
work=$vmdir/work
rm -rf "$work" "$img.new"
mkdir -p "$work" "$vmdir/dl" "$img.new"
root=$work/root

# Kernel package: linux-image-amd64 is a metapackage; the versioned one
# holds vmlinuz and the modules.
(
	cd "$vmdir/dl"
	rm -f ./*.deb
	apt-get "${apt_opts[@]}" download -q "linux-image-amd64" "$kpkg=$kpkgver" 2>&1 | grep -v 'unsandboxed' || true
)
kdeb=$(ls "$vmdir/dl/${kpkg}_"*.deb 2>/dev/null | head -1)
[ -n "$kdeb" ] || die "download of $kpkg failed"
dpkg-deb -x "$kdeb" "$work/kernel"
# trixie's kernel package ships its modules under /usr/lib (merged /usr).
if [ ! -d "$work/kernel/lib/modules" ] && [ -d "$work/kernel/usr/lib/modules" ]; then
	ln -s usr/lib "$work/kernel/lib"
fi
cp "$work/kernel/boot/vmlinuz-$kver" "$img.new/vmlinuz"
depmod -b "$work/kernel" "$kver"

# Guest root.
log "debootstrap $suite (minbase)"
mkdir -p "$vmdir/debs-$suite"
debootstrap --variant=minbase --include="$packages" --cache-dir="$vmdir/debs-$suite" \
	"$suite" "$root" $mirror >"$work/debootstrap.log" 2>&1 || {
	tail -30 "$work/debootstrap.log" >&2
	die "debootstrap failed (log: $work/debootstrap.log)"
}

# Modules: copy the closure of the wanted modules, then index them in place.
kmods=$work/kernel/lib/modules/$kver
dest=$root/lib/modules/$kver
mkdir -p "$dest"
for m in "${modules[@]}"; do
	modprobe -d "$work/kernel" -S "$kver" --show-depends "$m" ||
		die "module $m not found in $kpkg"
done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r path; do
	rel=${path#"$kmods"/}
	mkdir -p "$dest/$(dirname "$rel")"
	cp "$path" "$dest/$rel"
done
cp "$kmods"/modules.order "$kmods"/modules.builtin "$kmods"/modules.builtin.modinfo "$dest/"
depmod -b "$root" "$kver"
cp "$work/kernel/boot/config-$kver" "$root/boot/" 2>/dev/null || true

# Base configuration: quiet, fast boot; everything test-specific comes with
# the per-run overlay archive.
echo vmtest >"$root/etc/hostname"
: >"$root/etc/machine-id"
: >"$root/etc/fstab"
chroot "$root" passwd -d root >/dev/null
for u in serial-getty@ttyS0.service getty@tty1.service getty.target \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer dpkg-db-backup.timer systemd-timesyncd.service \
	systemd-networkd.service systemd-resolved.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
# systemd-oomd is there for the reaction scenario, which starts it. Debian's
# package enables it and sets ManagedOOMSwap=kill on -.slice, which must not
# act in the other scenarios: do not start it at boot.
rm -f "$root/etc/systemd/system/multi-user.target.wants/systemd-oomd.service"
rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/cache/apt/*.bin \
	"$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
# podman's own test helper (35 MB) and netavark's DHCP proxy: the podman
# scenario needs neither, and the root lives in the guest's RAM.
rm -f "$root"/usr/libexec/podman/podman-testing "$root"/usr/lib/podman/netavark-dhcp-proxy-client

log "packing initramfs"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$img.new/rootfs.cpio"
size=$(stat -c %s "$img.new/rootfs.cpio")
[ "$size" -gt $((20 * 1024 * 1024)) ] || die "initramfs is only $size bytes: cpio failed?"
echo "$kver" >"$img.new/kver"
echo "$key" >"$img.new/key"
rm -rf "$img" "$work"
mv "$img.new" "$img"
log "image $key ready: $((size / 1024 / 1024)) MiB root, kernel $kver, $(($(date +%s) - start)) s"
