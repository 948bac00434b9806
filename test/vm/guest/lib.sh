# Helpers for scenario scripts (bash). Scenarios run in their result
# directory ($RESULTS) and exit 0 (pass), 77 (skip) or anything else (fail).
# Each writes summary.txt: one line of key=value figures.

CGROOT=/sys/fs/cgroup
CG=$CGROOT/vmtest
GOVERNOR=$VMTEST/bin/governor

log() { echo "[$(date +%T)] $*"; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

# check DESCRIPTION COMMAND...: run COMMAND, fail the scenario if it fails.
check() {
	local what=$1
	shift
	if "$@"; then log "ok: $what"; else fail "$what"; fi
}

# summary KEY=VALUE...: append figures to the one-line summary.
summary() {
	local line
	line=$(cat "$RESULTS/summary.txt" 2>/dev/null)
	echo "${line:+$line }$*" >"$RESULTS/summary.txt"
}

mib() { echo $(($1 / 1048576)); }

# cg_make NAME: create $CG/NAME (NAME may have several levels) with the
# memory, cpu, io and pids controllers enabled on the way down.
cg_make() {
	local p=$CGROOT rel=vmtest/$1 d x
	while [ -n "$rel" ]; do
		d=${rel%%/*}
		if [ "$d" = "$rel" ]; then rel=; else rel=${rel#*/}; fi
		for x in memory cpu io pids; do echo "+$x" >"$p/cgroup.subtree_control" 2>/dev/null; done
		p=$p/$d
		mkdir -p "$p" || return 1
	done
}

# zram_swap SIZE: swap on a zram device (compressed RAM), so anonymous
# memory can be reclaimed as on a real TMO-style host.
zram_swap() {
	modprobe zram num_devices=1 || return 1
	grep -q zram0 /proc/swaps && return 0
	echo 1 >/sys/block/zram0/reset 2>/dev/null # a size left by a failed setup
	echo lz4 >/sys/block/zram0/comp_algorithm 2>/dev/null
	# (no mkswap -q: util-linux 2.36 of Debian 11 lacks it)
	echo "$1" >/sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
}

# cg_run NAME COMMAND...: run COMMAND in the background inside $CG/NAME;
# its pid is in $!.
cg_run() {
	local name=$1
	shift
	(echo "$BASHPID" >"$CG/$name/cgroup.procs" && exec "$@") &
}

cg_get() { cat "$CG/$1/$2"; }

# cg_wait_empty NAME SECONDS
cg_wait_empty() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q 'populated 0' "$CG/$1/cgroup.events" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cg_cleanup_all: stop the governor and samplers, kill and remove every test
# cgroup.
cg_cleanup_all() {
	[ -n "${GOV_PID:-}" ] && kill "$GOV_PID" 2>/dev/null
	pkill -x governor 2>/dev/null
	pkill -f 'vmload sample' 2>/dev/null
	[ -d "$CG" ] || return 0
	find "$CG" -mindepth 1 -depth -type d | while read -r d; do
		echo 0 >"$d/cgroup.freeze" 2>/dev/null
		# No cgroup.kill before 5.14: kill the tasks one by one.
		if [ -e "$d/cgroup.kill" ]; then echo 1 >"$d/cgroup.kill"; else xargs -r kill -9 <"$d/cgroup.procs"; fi 2>/dev/null
		for _ in $(seq 50); do grep -q 'populated 0' "$d/cgroup.events" && break; sleep 0.1; done
		rmdir "$d" 2>/dev/null
	done
	if grep -q zram0 /proc/swaps; then swapoff /dev/zram0 && echo 1 >/sys/block/zram0/reset; fi
	return 0
}

# sampler NAME [PERIOD]: record $CG/NAME's memory state to NAME.csv.
sampler() {
	vmload sample -cgroup "$CG/$1" -out "$RESULTS/$(echo "$1" | tr / _).csv" -every "${2:-1s}" &
}

# csv_col FILE COLUMN: print one column of a CSV (by header name).
csv_col() {
	awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) n = i; next } n { print $n }' "$1"
}

require_governor() {
	[ -x "$GOVERNOR" ] || skip "no governor binary in this run (cmd/governor does not build yet)"
}

# governor_start CONFIG [ARGS...]: start the daemon in the background, log in
# governor.log, and wait until it logs that it is governing (loading the BPF
# programs takes 10-40 s under TCG). Its pid is in GOV_PID.
# Each start records to its own flight recording, $RESULTS/record/N, with
# the policy it ran in N.policy: the host replays it (run.sh, REPLAY_CHECK).
governor_start() {
	local cfg=$1 t0 n i rec
	shift
	n=$(grep -c 'governor: governing' "$RESULTS/governor.log" 2>/dev/null)
	GOV_RUNS=$((${GOV_RUNS:-0} + 1))
	rec=$RESULTS/record/$GOV_RUNS
	mkdir -p "$RESULTS/record"
	echo "$cfg" >"$rec.policy"
	t0=$(date +%s)
	"$GOVERNOR" run --config "$cfg" --record-dir "$rec" --log-level debug "$@" >>"$RESULTS/governor.log" 2>&1 &
	GOV_PID=$!
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$GOV_PID" 2>/dev/null || { tail -20 "$RESULTS/governor.log"; fail "governor exited at start"; }
		[ "$(grep -c 'governor: governing' "$RESULTS/governor.log")" -gt "${n:-0}" ] && break
		sleep 0.1
	done
	[ "$i" -lt 1200 ] || fail "governor not governing after 120 s"
	GOV_START_S=$(($(date +%s) - t0))
	log "governor governing after ${GOV_START_S}s (pid $GOV_PID) with $cfg"
}

governor_stop() {
	local sig=${1:-TERM} i
	kill -"$sig" "$GOV_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$GOV_PID" 2>/dev/null || break; sleep 0.1; done
	wait "$GOV_PID" 2>/dev/null
	GOV_RC=$?
	log "governor stopped by SIG$sig, exit status $GOV_RC"
	GOV_PID=
}

# install_policy SRC DEST: copy a policy with the ownership and mode the
# governor demands (root, not group/world writable).
install_policy() {
	install -D -o root -g root -m 0644 "$1" "$2"
}

# knobs: every writable limit of every cgroup, "path knob value" sorted (the
# package and podman scenarios compare it before and after).
knobs() {
	find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | while read -r d; do
		for k in memory.low memory.min memory.high memory.max cpu.weight cpu.max cpu.idle io.weight cgroup.freeze; do
			[ -r "$d/$k" ] && printf '%s %s %s\n' "${d#/sys/fs/cgroup/}" "$k" "$(tr '\n' ' ' <"$d/$k")"
		done
	done | sort
}
# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local n=$1 i
	shift
	for ((i = 0; i < n * 10; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
