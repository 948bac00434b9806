#!/bin/bash
# Reports and artifacts of a VM test bed run (sourced by run.sh; also runs
# on its own over the results of an earlier run):
#
#   test/vm/artifacts.sh RESULTS DEST GOVERNOR [SCENARIO...]
#
# For every flight recording a scenario's governor made (RESULTS/SCENARIO/
# record/N, lib.sh's governor_start), `GOVERNOR report` writes
# record/N.report.html next to it (warnings, if any, to N.report.txt). A
# recording without segments is a daemon that died before its first block
# (30 ticks; lifecycle's SIGKILL): noted, no report. A report that fails on
# a real recording is a bug in `governor report`: it is printed and the
# function returns 1. Then each scenario's results directory (logs,
# figures, recordings with their policy names, reports, replay outputs) is
# copied to DEST/SCENARIO, with the run's guest notes (RESULTS/*.txt).
# SCENARIO defaults to every directory in RESULTS.

# vm_artifacts RESULTS DEST GOVERNOR SCENARIO...: as above; sets
# vm_reports[SCENARIO] to the number of reports written.
declare -A vm_reports
vm_artifacts() {
	local res=$1 dest=$2 gov=$3 n rd rel bad=0 count
	shift 3
	mkdir -p "$dest"
	for n in "$@"; do
		[ -d "$res/$n" ] || continue
		count=0
		for rd in "$res/$n"/record/*/; do
			[ -d "$rd" ] || continue
			rel=$n/record/$(basename "$rd")
			if ! compgen -G "$res/$rel/seg-*.jsonl.zst" >/dev/null; then
				echo "vm-test: $rel: no recording (the daemon stopped before its first block); no report"
				continue
			fi
			# Relative paths: the report's title names the scenario's run.
			if ! (cd "$res" && "$gov" report -o "$rel.report.html" "$rel") >"$res/$rel.report.txt" 2>&1; then
				echo "===== scenario $n: governor report fails on its recording $rel: a test bed recording must report (a bug in the recorder or in governor report) ====="
				head -40 "$res/$rel.report.txt"
				bad=1
				continue
			fi
			[ -s "$res/$rel.report.txt" ] || rm -f "$res/$rel.report.txt"
			count=$((count + 1))
		done
		vm_reports[$n]=$count
		rm -rf "${dest:?}/$n"
		cp -a "$res/$n" "$dest/$n"
	done
	cp -a "$res"/*.txt "$dest/" 2>/dev/null || true
	return $bad
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	[ $# -ge 3 ] || { echo "usage: $0 RESULTS DEST GOVERNOR [SCENARIO...]" >&2; exit 2; }
	res=$1 dest=$2 gov=$(realpath "$3")
	shift 3
	if [ $# -eq 0 ]; then
		for d in "$res"/*/; do set -- "$@" "$(basename "$d")"; done
	fi
	rc=0
	vm_artifacts "$res" "$dest" "$gov" "$@" || rc=1
	for n in "$@"; do echo "  $n: ${vm_reports[$n]:-0} reports"; done
	echo "artifacts in $dest"
	exit $rc
fi
