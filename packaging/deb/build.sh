#!/bin/sh
# Builds the governor Debian package with dpkg-deb alone (no debhelper):
#   packaging/deb/build.sh BINARY VERSION OUTDIR
# BINARY is the static binary (make build), VERSION the project's version
# (git describe), from which the Debian version is made (DEB_VERSION
# overrides it); GOARCH (default: go env GOARCH) gives the architecture.
# Writes OUTDIR/governor_DEBVERSION_ARCH.deb. See docs/OPERATIONS.md,
# "Debian package".
set -eu

bin=$1 version=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

# The Debian version: v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+git4.gabc,
# an untagged commit abc -> 0~gitYYYYMMDDhhmmss.abc (ordered by commit
# time); -dirty -> +dirty.
if [ -z "${DEB_VERSION:-}" ]; then
	case $version in
	v[0-9]*.* | [0-9]*.[0-9]*)
		DEB_VERSION=$(printf '%s\n' "${version#v}" | sed 's/-dirty$/+dirty/; s/-\([0-9][0-9]*\)-g/+git\1.g/; s/-/~/g') ;;
	*)
		when=$(git -C "$top" log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0)
		DEB_VERSION=0~git$when.$(printf '%s\n' "$version" | sed 's/-dirty$/+dirty/; s/[^A-Za-z0-9.+~]/./g') ;;
	esac
fi
dpkg --validate-version "$DEB_VERSION"

goarch=${GOARCH:-$(go env GOARCH 2>/dev/null || uname -m)}
case $goarch in
amd64 | x86_64) arch=amd64 ;;
arm64 | aarch64) arch=arm64 ;;
arm) arch=armhf ;;
386) arch=i386 ;;
ppc64le) arch=ppc64el ;;
riscv64 | s390x) arch=$goarch ;;
*) echo "build.sh: no Debian architecture known for GOARCH $goarch" >&2; exit 1 ;;
esac

# Time stamps (changelog, man page) are the last commit's.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)}
date_rfc=$(date -u -R -d "@$epoch")

# Set DEB_MAINTAINER="Name <address>" for a package you publish.
maintainer=${DEB_MAINTAINER:-governor maintainers <governor@example.org>}

umask 022
root=$(mktemp -d "${TMPDIR:-/tmp}/governor-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
doc=$root/usr/share/doc/governor

install -D -m 0755 "$bin" "$root/usr/bin/governor"
# Stripped as Debian strips binaries (Go keeps its own line tables: stack
# traces still name functions and lines).
if command -v strip >/dev/null; then
	strip --strip-unneeded "$root/usr/bin/governor"
fi
# The unit of `make install`, with the package's paths.
install -d "$root/lib/systemd/system"
sed -e 's#/usr/local/bin/governor#/usr/bin/governor#g' \
	-e 's#file:///usr/local/share/doc/governor/OPERATIONS.md#file:///usr/share/doc/governor/OPERATIONS.md.gz#' \
	-e 's#^\# Installed by `make install` to /etc/systemd/system/governor.service;#\# Installed by the Debian package to /lib/systemd/system/governor.service;#' \
	"$top/examples/governor.service" >"$root/lib/systemd/system/governor.service"
chmod 0644 "$root/lib/systemd/system/governor.service"
if grep -q /usr/local "$root/lib/systemd/system/governor.service"; then
	echo "build.sh: the unit still names /usr/local:" >&2
	grep -n /usr/local "$root/lib/systemd/system/governor.service" >&2
	exit 1
fi
# Copied to /etc/systemd/system/governor.service.d/ by postinst where
# systemd is older than 253.
install -D -m 0644 "$top/examples/governor.service.d/10-before-systemd-253.conf" \
	"$root/usr/share/governor/10-before-systemd-253.conf"
# The default policy, a conffile: dpkg keeps the administrator's changes.
install -D -m 0644 "$top/policies/default.hcl" "$root/etc/governor/default.hcl"

install -d "$doc"
gzip -9n <"$top/docs/OPERATIONS.md" >"$doc/OPERATIONS.md.gz"
gzip -9n <"$top/README.md" >"$doc/README.md.gz"
sed "s/@YEAR@/$(date -u -d "@$epoch" +%Y)/" "$here/copyright" >"$doc/copyright"
chmod 0644 "$doc/copyright"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/governor"
{
	printf 'governor (%s) unstable; urgency=medium\n\n' "$DEB_VERSION"
	printf '  * Built from %s (make deb).\n\n' "$version"
	printf ' -- %s  %s\n' "$maintainer" "$date_rfc"
} | gzip -9n >"$doc/changelog.gz"

# A man page from the binary's own help, when it runs here.
if help=$("$bin" help 2>&1); then
	install -d "$root/usr/share/man/man8"
	{
		printf '.TH GOVERNOR 8 "%s" "governor %s" "System Administration"\n' "$(date -u -d "@$epoch" +%Y-%m-%d)" "$version"
		printf '.SH NAME\ngovernor \\- adaptive resource governor for cgroup v2\n'
		printf '.SH SYNOPSIS\n.nf\n'
		printf '%s\n' "$help" | sed -n '/^Usage:/,$p' | sed '1d; s/\\/\\e/g; s/^\([.'"'"']\)/\\\&\1/'
		printf '.fi\n.SH DESCRIPTION\n'
		printf 'The daemon runs as governor.service with the policies in\n.IR /etc/governor/*.hcl .\n'
		printf 'See\n.I /usr/share/doc/governor/OPERATIONS.md.gz\nand\n.BR "governor COMMAND \\-\\-help" .\n'
	} | gzip -9n >"$root/usr/share/man/man8/governor.8.gz"
fi

install -d "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
echo /etc/governor/default.hcl >"$root/DEBIAN/conffiles"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: governor
Version: $DEB_VERSION
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: init-system-helpers (>= 1.54~)
Recommends: systemd (>= 247)
Section: admin
Priority: optional
Description: adaptive resource governor for cgroup v2
 A daemon that watches pressure (PSI) and run-queue latency (BPF) per
 cgroup and changes cgroup limits as its HCL policies say: it squeezes
 batch work while services stall, reclaims memory proactively and
 freezes or kills only as a last resort. Stopping it restores every
 limit it changed.
 .
 This package runs it as governor.service with the policies in
 /etc/governor.
CONTROL

# Modification times of the staged files: the commit's, for a
# reproducible package.
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "$out"
deb=$out/governor_${DEB_VERSION}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
