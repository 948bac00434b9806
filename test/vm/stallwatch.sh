# Sourced by test/vm/run.sh and bpf/vm/run.sh.
#
# stall_watch CONSOLE PIDFILE MARKER: in the background, watch a guest's
# console for the kernel's lockup reports (soft lockup, RCU stall). On the
# first one, give the guest 20 s to print its backtraces, write the report
# line to MARKER and stop QEMU (pid in PIDFILE), so a locked-up guest ends
# in about a minute instead of at the VM timeout. Prints the watcher's pid.
#
# A guest whose clock stopped (the text-patching lockup of README.md, where
# the spinning vCPU's clock is frozen) prints no lockup report at all. So
# the test bed's runner also prints a heartbeat line (VMTEST-ALIVE) every
# 30 s of guest time from its first line on; when none arrives for
# STALL_SILENCE seconds of host time (default 240) before the guest says
# DONE, the guest counts as locked up too. STALL_START and STALL_DONE name
# the console lines that open and close that watch (bpf/vm/run.sh's guest
# prints its own).
#
# A guest that said DONE has its results on their disk; if QEMU is still
# running STALL_POWEROFF seconds (default 90) later, it is stopped and
# MARKER starts "no power-off" (not a lockup of any scenario: run.sh goes
# on). On 2026-12-07 a bookworm guest hung for 10 min after DONE, in the
# shutdown that stopped every unit.
stall_watch() {
	local console=$1 pidfile=$2 marker=$3
	local silence=${STALL_SILENCE:-240} poweroff=${STALL_POWEROFF:-90}
	local started=${STALL_START:-VMTEST: guest:} done=${STALL_DONE:-VMTEST: DONE}
	rm -f "$marker"
	(
		beats=-1 since=$(date +%s) done_at=
		while sleep 5; do
			line=
			# After DONE only the power-off counts: a lockup report
			# then costs no scenario its results.
			if grep -aqF "$done" "$console" 2>/dev/null; then
				done_at=${done_at:-$(date +%s)}
				[ $(($(date +%s) - done_at)) -ge "$poweroff" ] &&
					line="no power-off ${poweroff}s after the guest said DONE"
			elif line=$(grep -aE -m1 'BUG: soft lockup|detected stalls on CPUs' "$console" 2>/dev/null); then
				:
			elif grep -aqF "$started" "$console" 2>/dev/null; then
				n=$(grep -ac 'VMTEST-ALIVE' "$console" 2>/dev/null)
				if [ "$n" != "$beats" ]; then
					beats=$n since=$(date +%s)
				elif [ $(($(date +%s) - since)) -ge "$silence" ]; then
					line="no heartbeat from the guest for ${silence}s (its clock stopped?)"
				fi
			fi
			[ -n "$line" ] || continue
			case $line in no\ *) ;; *) sleep 20 ;; esac
			echo "$line" >"$marker"
			[ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
			exit 0
		done
	) >/dev/null 2>&1 &
	echo $!
}
