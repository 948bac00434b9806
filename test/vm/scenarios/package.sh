# Scenario "package": the Debian package of `make deb`, installed with
# apt-get as a user would: the unit is enabled and active (readiness), the
# systemd<253 drop-in is there where systemd is older, the daemon sets a
# knob of a test unit through systemd; `apt-get remove` stops it and
# leaves no knob anywhere changed and the binary gone (the conffile
# stays); `apt-get purge` leaves none of the package's files, its
# enablement link, drop-in or /run/governor.
#
# The package is not built in the guest: run.sh builds it on the host
# with packaging/deb/build.sh (what `make deb` runs) and puts it in
# /opt/vmtest/deb when this scenario is on the list. The guest has no
# network: the package's dependencies must already be in the image.
set -u
. "$VMTEST/lib.sh"

deb=$(ls "$VMTEST"/deb/governor_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || skip "no package in $VMTEST/deb: run.sh stages it when SCENARIOS names package"
dpkg -s init-system-helpers >/dev/null 2>&1 || skip "init-system-helpers is not in the guest image"

web=vmt-pkg-web.service
low=$((200 << 20))

# Only this scenario's part of the unit's journal: the scenarios before it
# in the same boot ran governor.service too (stocknode's desktop leg logs a
# known hand-back of cpu.idle).
since=@$(($(date +%s) - 1))
journal() { journalctl -u governor.service --since "$since" --no-pager -o cat >"$RESULTS/governor.log" 2>&1; }
cleanup() {
	journal
	systemctl status governor.service $web >"$RESULTS/systemctl-status.txt" 2>&1
	systemctl stop $web 2>/dev/null
	rm -f /etc/systemd/system/$web /etc/governor/00-package-test.hcl
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq governor >/dev/null 2>&1
	systemctl daemon-reload
	systemctl reset-failed 2>/dev/null
}
trap cleanup EXIT

show() { systemctl show -P "$2" "$1"; }
active() { [ "$(systemctl is-active governor.service)" = active ]; }
applied() { [ "$(show $web MemoryLow)" = $low ] && [ "$(cat /sys/fs/cgroup/system.slice/$web/memory.low)" = $low ]; }

# A unit for the daemon to govern, and the policy that gives it a knob.
cat >/etc/systemd/system/$web <<-UNIT
[Service]
ExecStart=/bin/sleep infinity
MemoryAccounting=yes
UNIT
systemctl daemon-reload
systemctl start $web || fail "test unit does not start"
install -D -m 0644 "$VMTEST/policies/package/00-package-test.hcl" /etc/governor/00-package-test.hcl
before=$RESULTS/knobs-before.txt
knobs >"$before"

dpkg-deb --info "$deb" >"$RESULTS/deb-info.txt"
dpkg-deb --contents "$deb" >"$RESULTS/deb-contents.txt"
t0=$(date +%s%N)
cp "$deb" /tmp/governor.deb
DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/governor.deb >"$RESULTS/apt-install.txt" 2>&1 ||
	{ cat "$RESULTS/apt-install.txt"; fail "apt-get install failed"; }
install_ms=$((($(date +%s%N) - t0) / 1000000))
log "installed $(dpkg-query -W -f '${Package} ${Version}' governor) in ${install_ms} ms"
dpkg -L governor >"$RESULTS/files.txt"

check "governor.service enabled by postinst" test "$(systemctl is-enabled governor.service)" = enabled
check "governor.service active after install" wait_for 30 active
check "/usr/bin/governor installed" test -x /usr/bin/governor
check "default policy installed as a conffile" grep -qx /etc/governor/default.hcl /var/lib/dpkg/info/governor.conffiles
sd=$(dpkg-query -W -f '${Version}' systemd)
dropin=/etc/systemd/system/governor.service.d/10-before-systemd-253.conf
if dpkg --compare-versions "$sd" lt 253~; then
	check "systemd $sd: the Type=notify drop-in is installed" test -f "$dropin"
else
	check "systemd $sd: no drop-in" test ! -e "$dropin"
fi
check "the daemon answers its control socket" /usr/bin/governor status -n 1
check "MemoryLow of $web set through systemd" wait_for 30 applied
log "$web MemoryLow=$(show $web MemoryLow) memory.low=$(cat /sys/fs/cgroup/system.slice/$web/memory.low)"

# remove: prerm stops the service, which restores every knob.
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q governor >"$RESULTS/apt-remove.txt" 2>&1 ||
	{ cat "$RESULTS/apt-remove.txt"; fail "apt-get remove failed"; }
journal
check "governor.service stopped by remove" test "$(systemctl is-active governor.service)" != active
check "the daemon logged that it restored its knobs" grep -q "restored every changed knob" "$RESULTS/governor.log"
after=$RESULTS/knobs-after.txt
knobs >"$after"
# Compare the cgroups present both times (units come and go meanwhile).
declare -A was
while read -r p k v; do was["$p $k"]=$v; done <"$before"
changed=
while read -r p k v; do
	if [ -n "${was["$p $k"]+set}" ] && [ "${was["$p $k"]}" != "$v" ]; then
		changed="$changed$p $k: ${was["$p $k"]}-> $v; "
	fi
done <"$after"
printf '%s\n' "$changed" >"$RESULTS/knobs-changed.txt"
check "no knob changed after remove" test -z "$changed"
check "binary gone after remove" test ! -e /usr/bin/governor
check "conffile kept after remove" test -f /etc/governor/default.hcl

# purge: nothing of the package left.
rm -f /etc/governor/00-package-test.hcl
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q governor >"$RESULTS/apt-purge.txt" 2>&1 ||
	{ cat "$RESULTS/apt-purge.txt"; fail "apt-get purge failed"; }
left=
while read -r f; do
	# Directories stay that hold others' files or that another package
	# owns too (the image's /usr/share/doc and /usr/share/man are empty;
	# on merged /usr, /lib/systemd is a path through the /lib symlink).
	[ -d "$f" ] && { [ -n "$(ls -A "$f" 2>/dev/null)" ] || dpkg-query -S "$f" >/dev/null 2>&1; } && continue
	[ -e "$f" ] && left="$left $f"
done <"$RESULTS/files.txt"
for f in /etc/governor /run/governor "$dropin" /etc/systemd/system/multi-user.target.wants/governor.service; do
	[ -e "$f" ] && left="$left $f"
done
check "nothing left after purge:${left:- (none)}" test -z "$left"
check "dpkg forgot the package" test -z "$(dpkg-query -W -f '${Status}' governor 2>/dev/null | grep -v not-installed)"

summary "install_ms=$install_ms systemd=$sd files=$(wc -l <"$RESULTS/files.txt")"
