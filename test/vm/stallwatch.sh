# Sourced by test/vm/run.sh and bpf/vm/run.sh.
#
# stall_watch CONSOLE PIDFILE MARKER: in the background, watch a guest's
# console for the kernel's lockup reports (soft lockup, RCU stall). On the
# first one, give the guest 20 s to print its backtraces, write the report
# line to MARKER and stop QEMU (pid in PIDFILE), so a locked-up guest ends
# in about a minute instead of at the VM timeout. Prints the watcher's pid.
stall_watch() {
	local console=$1 pidfile=$2 marker=$3
	rm -f "$marker"
	(
		while sleep 5; do
			line=$(grep -aE -m1 'BUG: soft lockup|detected stalls on CPUs' "$console" 2>/dev/null) || continue
			sleep 20
			echo "$line" >"$marker"
			[ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
			exit 0
		done
	) >/dev/null 2>&1 &
	echo $!
}
