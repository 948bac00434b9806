# Scenario "systemd": the governor installed as examples/governor.service
# (hardened unit, Type=notify-reload or its drop-in for systemd < 253)
# reaches active; it sets limits of two systemd units through systemd's
# D-Bus API (visible in `systemctl show`) and they survive daemon-reload;
# `systemctl reload` with a broken policy keeps the running one and logs
# why; SIGKILL and systemd's restart leave no knob stuck (re-adopted from
# the state file); `systemctl stop` puts every knob back. Last, a
# last_resort policy freezes and then kills a unit (FreezeUnit, KillUnit).
set -u
. "$VMTEST/lib.sh"
require_governor

pol=$VMTEST/policies/systemd
unit=/etc/systemd/system/governor.service
web=vmt-web.service
batch=vmt-batch.service
run=vmt-run.service
low=$((200 << 20))

# Only this scenario's part of the unit's journal: the scenarios before it
# in the same boot ran governor.service too (stocknode's desktop leg logs a
# known hand-back of cpu.idle).
since=@$(($(date +%s) - 1))
journal() { journalctl -u governor.service --since "$since" --no-pager -o cat >"$RESULTS/governor.log" 2>&1; }
cleanup() {
	journal
	governor status >>"$RESULTS/status.txt" 2>&1
	systemctl status governor.service $web $batch $run >"$RESULTS/systemctl-status.txt" 2>&1
	systemctl stop governor.service $web $batch $run 2>/dev/null
	systemctl revert $web $batch $run >/dev/null 2>&1
	rm -rf "$unit" "$unit.d" /etc/systemd/system/$web /etc/systemd/system/$batch /etc/systemd/system/$run /etc/governor /run/governor
	systemctl daemon-reload
	systemctl reset-failed 2>/dev/null
}
trap cleanup EXIT

# Install what `make install` installs.
install -D -m 0755 "$GOVERNOR" /usr/local/bin/governor
install -D -m 0644 "$pol/governor.service" "$unit"
sdv=$(systemctl --version | awk 'NR == 1 { print $2 }')
if [ "$sdv" -lt 253 ]; then
	install -D -m 0644 "$pol/10-before-systemd-253.conf" "$unit.d/10-before-systemd-253.conf"
	log "systemd $sdv: Type=notify drop-in installed (no notify-reload before 253)"
fi
install_policy "$pol/node.hcl" /etc/governor/node.hcl
systemd-analyze verify "$unit" 2>&1 | grep -v 'notify-reload\|ReloadSignal' | sed 's/^/verify: /'
exposure=$(systemd-analyze security governor.service 2>/dev/null | awk '/Overall exposure level/ { print $(NF-2) }')
log "systemd-analyze security: exposure ${exposure:-?}"

# Two services to govern (the memory and cpu controllers enabled for them).
for u in $web $batch $run; do
	cat >/etc/systemd/system/$u <<-EOF
	[Service]
	ExecStart=/bin/sleep infinity
	MemoryAccounting=yes
	CPUWeight=100
	EOF
done
systemctl daemon-reload
systemctl start $web $batch || fail "test services do not start"

show() { systemctl show -P "$2" "$1"; }
cgf() { cat "/sys/fs/cgroup/system.slice/$1/$2"; }
# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local n=$1 i
	shift
	for ((i = 0; i < n * 10; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
applied() {
	[ "$(show $web MemoryLow)" = $low ] && [ "$(cgf $web memory.low)" = $low ] &&
		[ "$(show $batch CPUWeight)" = 50 ] && [ "$(cgf $batch cpu.weight)" = 50 ]
}
restored() {
	[ "$(cgf $web memory.low)" = 0 ] && [ "$(show $web MemoryLow)" = 0 ] &&
		[ "$(cgf $batch cpu.weight)" = 100 ] && [ "$(show $batch CPUWeight)" = 100 ]
}
state() { log "$web MemoryLow=$(show $web MemoryLow) memory.low=$(cgf $web memory.low); $batch CPUWeight=$(show $batch CPUWeight) cpu.weight=$(cgf $batch cpu.weight)"; }

t0=$(date +%s%N)
systemctl start governor.service || { journal; fail "systemctl start governor failed"; }
start_ms=$((($(date +%s%N) - t0) / 1000000))
check "governor.service active after start (readiness: READY=1 after the first step)" test "$(systemctl is-active governor.service)" = active
wait_for 20 applied; state
check "limits set through systemd (systemctl show MemoryLow, CPUWeight)" applied
state
journal
check "the hardened unit still loads BPF" grep -q 'BPF sensing loaded' "$RESULTS/governor.log"
check "D-Bus actuation in use" grep -q 'connected to systemd' "$RESULTS/governor.log"
governor status >"$RESULTS/status.txt" 2>&1
cat "$RESULTS/status.txt"
check "status shows the units written via systemd" grep -q "system.slice/$web .*systemd" "$RESULTS/status.txt"
governor admission >"$RESULTS/admission.txt" 2>&1
adm_rc=$?
log "governor admission: exit $adm_rc, $(head -1 "$RESULTS/admission.txt")"
check "admission answers (0 or 1)" test "$adm_rc" -le 1

systemctl daemon-reload
sleep 3
state
check "limits survive systemctl daemon-reload" applied
journal
check "no hand-back after daemon-reload" sh -c "! grep -q 'changed by someone else' '$RESULTS/governor.log'"

install_policy "$pol/broken.hcl" /etc/governor/node.hcl
systemctl reload governor.service
reload_rc=$?
sleep 2
journal
check "reload of a broken policy: still active (reload exit $reload_rc)" test "$(systemctl is-active governor.service)" = active
check "reload of a broken policy: the error is logged" grep -q 'reload failed; keeping the running policy' "$RESULTS/governor.log"
check "reload of a broken policy: diagnostics name the file and line" grep -Eq '"@message":"policy error".*"file":"[^"]*node\.hcl".*"line":[0-9]+' "$RESULTS/governor.log"
check "reload of a broken policy: the old policy still holds" applied
install_policy "$pol/node.hcl" /etc/governor/node.hcl
systemctl reload governor.service || fail "reload of the good policy"

pid1=$(show governor.service MainPID)
systemctl kill -s KILL governor.service
check "SIGKILL: restarted by systemd" wait_for 20 sh -c "[ \"\$(systemctl show -P MainPID governor.service)\" != $pid1 ] && [ \"\$(systemctl show -P MainPID governor.service)\" != 0 ] && systemctl is-active -q governor.service"
restarts=$(show governor.service NRestarts)
check "SIGKILL: the restarted governor holds the limits" wait_for 10 applied
sleep 2
journal
check "SIGKILL: the restart re-adopted the knobs from its state file" grep -q 're-adopted knob' "$RESULTS/governor.log"

systemctl stop governor.service
state
journal
check "systemctl stop: every knob restored (cgroupfs and systemctl show)" restored
check "systemctl stop: clean exit" test "$(show governor.service Result)" = success
# Freeze, then kill, through systemd.
install_policy "$pol/lastresort.hcl" /etc/governor/node.hcl
systemctl start $run || fail "$run does not start"
systemctl start governor.service || fail "second start"
frozen=no
for ((i = 0; i < 300; i++)); do
	st=$(show $run FreezerState)
	[ "$st" = frozen ] && frozen=yes
	[ "$(show $run ActiveState)" != active ] && break
	sleep 0.1
done
log "$run: ActiveState=$(show $run ActiveState) Result=$(show $run Result) seen frozen: $frozen"
journal
check "last_resort: systemd reported the unit frozen (FreezeUnit)" test $frozen = yes
check "last_resort: the unit was killed (KillUnit SIGKILL)" test "$(show $run Result)" = signal
check "last_resort: freeze and kill in the audit trail" sh -c "grep -q '\"kind\":\"freeze\"' '$RESULTS/governor.log' && grep -q '\"kind\":\"kill\"' '$RESULTS/governor.log'"
check "last_resort: no failed action" sh -c "! grep -q '\"@message\":\"action failed\"' '$RESULTS/governor.log'"
systemctl stop governor.service
summary "start_ms=$start_ms exposure=${exposure:-?} systemd=$sdv nrestarts=$restarts reload_broken_rc=$reload_rc admission_rc=$adm_rc frozen_seen=$frozen"
