# Scenario "stocknode": the governor as a user installs it on a stock
# Debian node (what `make install` lays out: examples/governor.service
# unmodified, policies in /etc/governor), a latency-sensitive service in
# system.slice with no resource settings, CPU-hungry batch jobs as
# `systemd-run --slice=batch.slice` transient units. Nobody asked systemd
# for the cpu or io controller. For the built-in default (empty
# /etc/governor) and for examples/batch-node.hcl:
#   - the suppress squeeze acts within the time its conditions imply
#     (pressure already high: `for = 5s` plus a tick or two);
#   - no knob outside the policy's targets changes (new files that the
#     kernel fills with its defaults when systemd enables a controller are
#     allowed);
#   - (built-in default only, first) a service throttled by its own
#     CPUQuota beside a batch job on the other CPU: nothing is squeezed,
#     the journal says once that the stall is self-inflicted (issue 14);
#   - daemon-reload keeps the squeeze; SIGKILL and systemd's restart, then
#     `systemctl stop`: knob files, unit properties (systemctl show), every
#     cgroup.subtree_control and the runtime drop-ins under /run/systemd
#     are exactly as before the governor started.
# Then examples/proactive-reclaim.hcl (a docker-named transient scope in
# system.slice: cold page cache reclaimed, stall under the goal; see
# reclaim_leg) and examples/desktop.hcl (a user session's app beside a
# batch job: batch.slice cpu.idle = 1; see desktop_leg), each with the same
# nothing-outside and reload / SIGKILL / stop checks. On 5.10 those two
# must be refused by name (journal, validate --host exit 3).
# STOCKNODE_LEGS (e.g. reclaim.desktop) runs only some legs.
set -u
. "$VMTEST/lib.sh"
require_governor

ex=$VMTEST/examples
unit=/etc/systemd/system/governor.service
svc=web.service # matches batch-node.hcl's "critical" class
jobs="vmt-job1.service vmt-job2.service"
props=CPUWeight,IOWeight,CPUQuotaPerSecUSec,MemoryLow,MemoryMin,MemoryHigh,MemoryMax,CPUAccounting,IOAccounting,MemoryAccounting,DropInPaths,NeedDaemonReload
duser=vmtdesk duid=1500 # the desktop leg's user
# STOCKNODE_LEGS: the legs to run, separated by commas or dots (run.sh
# passes only [A-Za-z0-9._-]; all by default), for
# working on one.
legs=${STOCKNODE_LEGS:-selfthrottle,default,batchnode,reclaim,desktop}
legs=${legs//[,.]/ }
leg() { case " $legs " in *" $1 "*) return 0 ;; esac; log "leg $1 not run (STOCKNODE_LEGS)"; return 1; }
sdv=$(systemctl --version | awk 'NR == 1 { print $2 }')

journal() { journalctl -u governor.service --no-pager -o cat >"$RESULTS/governor.log" 2>&1; }
cleanup() {
	journal
	systemctl stop governor.service $jobs $svc ${units:-} 2>/dev/null
	if id "$duser" >/dev/null 2>&1; then
		systemctl stop "user@$duid.service" "user-runtime-dir@$duid.service" 2>/dev/null
		userdel -r "$duser" 2>/dev/null
	fi
	rm -rf "/run/systemd/system/user-runtime-dir@$duid.service.d" "/run/systemd/system/user@$duid.service.d"
	rm -rf "$unit" "$unit.d" /etc/systemd/system/$svc /etc/governor /run/governor /usr/local/bin/governor
	systemctl daemon-reload
	systemctl reset-failed 2>/dev/null
}
trap cleanup EXIT

# snap OUT: the state the governor must give back. Knob files and
# cgroup.subtree_control of every cgroup (the governor's own, the test
# bed's and the desktop leg's user-runtime-dir@, whose cgroup systemd 247
# brings back with default values while the leg runs, excluded), the unit properties of every slice and of the test
# units (and of the leg's own, $units), and the runtime drop-ins.
snap() {
	# One process per kind of state: the guest is busy with the batch jobs.
	(cd /sys/fs/cgroup && find . \( -name cgroup.subtree_control -o -name cpu.weight -o -name cpu.max -o -name cpu.idle \
		-o -name io.weight -o -name memory.low -o -name memory.min -o -name memory.high -o -name memory.max \) |
		grep -v '^\./\(vmtest\|system.slice/governor.service\|system.slice/vmtest.service\|user.slice/user-[0-9]*.slice/user-runtime-dir@\)' | sort |
		xargs awk 'FNR == 1 { if (NR > 1) print ""; printf "%s", FILENAME } { printf " %s", $0 } END { print "" }') >"$1.files"
	systemctl show -p "Id,$props" -- -.slice system.slice batch.slice $svc $jobs ${units:-} |
		awk 'BEGIN { RS = ""; FS = "\n" } { u = ""; for (i = 1; i <= NF; i++) if ($i ~ /^Id=/) u = substr($i, 4)
			for (i = 1; i <= NF; i++) if ($i !~ /^Id=/) print u " " $i }' >"$1.props"
	find /run/systemd/system.control /run/systemd/transient -path '*.d/*' -type f 2>/dev/null | sort |
		xargs -r grep -H -v '^#' >"$1.dropins"
}

# outside BEFORE DURING TARGET_REGEX: lines of knob files that changed and
# are not the policy's targets. A file that did not exist before may hold
# only the kernel's default (systemd enabled its controller); a
# cgroup.subtree_control may gain controllers (systemd enables them for
# the properties the governor set), and is reported.
outside() {
	awk -v re="$3" 'FNR == NR { before[$1] = $0; next }
		{ had = ($1 in before); was = had ? substr(before[$1], length($1) + 2) : "absent" }
		had && before[$1] == $0 { next }
		$1 ~ re { next }
		$1 ~ /cgroup.subtree_control$/ { print "note: " $0 " (before: " was ")" > "/dev/stderr"; next }
		!had && ($0 ~ / (100|max 100000|default 100|0|max)$/) { next }
		{ print $0 "   (before: " was ")" }' "$1" "$2"
}

# same_files BEFORE AFTER: the knob files must be as BEFORE, except in
# cgroups that came or went on their own while the leg ran (a socket-
# activated service that exits when idle, such as podman's
# netavark-dhcp-proxy on trixie): those are left out of the diff and
# listed on stderr as "gone DIR" and "new DIR". A new cgroup must hold only
# the kernel's defaults (a line that does not is a difference); a gone one
# must be a unit that ended by itself (checked by the caller).
same_files() {
	awk 'function dir(f) { sub("/[^/]*$", "", f); return f }
		FNR == NR { before[$1] = $0; bdir[dir($1)] = 1; next }
		{ after[$1] = $0; adir[dir($1)] = 1; order[++n] = $1 }
		END {
			bad = 0
			for (f in before) {
				d = dir(f)
				if (!(d in adir)) { if (!(d in told)) { print "gone " d > "/dev/stderr"; told[d] = 1 }; continue }
				if (!(f in after)) { print "- " before[f]; bad = 1 }
				else if (after[f] != before[f]) { print "- " before[f]; print "+ " after[f]; bad = 1 }
			}
			for (i = 1; i <= n; i++) {
				f = order[i]; d = dir(f)
				if (f in before) continue
				if (!(d in bdir)) {
					if (!(d in told)) { print "new " d > "/dev/stderr"; told[d] = 1 }
					if (after[f] ~ / (100|max 100000|default 100|0|max)$/ || f ~ /cgroup.subtree_control$/) continue
				}
				print "+ " after[f]; bad = 1
			}
			exit bad
		}' "$1" "$2"
}

# ended_by_itself DIR: DIR (./system.slice/x.service) is the cgroup of a
# unit that is no longer active and whose last run ended with success.
ended_by_itself() {
	local u=${1##*/} st
	case "$u" in *.service | *.scope | *.socket | *.mount) ;; *) return 1 ;; esac
	st="$(systemctl show -P ActiveState -- "$u") $(systemctl show -P Result -- "$u")"
	case "$st" in "inactive success" | "failed success") return 0 ;; esac
	echo "$u: $st" >&2
	return 1
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds, by the clock
# (on the busy guest one poll can take far longer than its sleep).
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
	"$@"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
avg10() { awk '/^some/ { sub("avg10=", "", $2); print $2 }' "/sys/fs/cgroup/system.slice/$svc/cpu.pressure"; }

# Install what `make install` installs, the unit unmodified.
install -D -m 0755 "$GOVERNOR" /usr/local/bin/governor
install -D -m 0644 "$ex/governor.service" "$unit"
if [ "$sdv" -lt 253 ]; then
	install -D -m 0644 "$ex/governor.service.d/10-before-systemd-253.conf" "$unit.d/10-before-systemd-253.conf"
fi
mkdir -p /etc/governor
chmod 0755 /etc/governor
log "systemd $sdv, kernel $(uname -r); root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
systemd-analyze verify "$unit" 2>&1 | sed 's/^/verify: /'

# Issue 14, with what a user has: the built-in default and a service that
# its own CPUQuota throttles (20 % of a CPU, burning CPU 0) beside a batch
# job on CPU 1. The service waits for CPU most of the time and so does
# system.slice above it, but no neighbour causes it: batch.slice is not
# squeezed, and the journal says why, once.
selfthrottle_leg() {
	local thr=vmt-thr.service job=vmt-job1.service w n a
	rm -f /etc/governor/*.hcl
	systemd-run --quiet --unit=$thr -p CPUQuota=20% taskset -c 0 "$VMTEST/bin/vmload" burn -threads 1 -for 2h ||
		fail "selfthrottle: $thr does not start"
	systemd-run --quiet --unit=$job --slice=batch.slice taskset -c 1 "$VMTEST/bin/vmload" burn -threads 1 -for 2h ||
		fail "selfthrottle: $job does not start"
	sleep 10 # the service's avg10 climbs
	systemctl start governor.service || { journal; fail "selfthrottle: systemctl start governor failed"; }
	sleep "${STOCKNODE_SELFTHROTTLE_SECONDS:-20}"
	w=$(cat /sys/fs/cgroup/batch.slice/cpu.weight 2>/dev/null || echo absent)
	{
		governor explain batch.slice
		echo "--- $thr cpu.stat:"
		cat /sys/fs/cgroup/system.slice/$thr/cpu.stat /sys/fs/cgroup/system.slice/$thr/cpu.max
		governor status
	} >"$RESULTS/selfthrottle-explain.txt" 2>&1
	a=$(awk '/^some/ { sub("avg10=", "", $2); print $2 }' /sys/fs/cgroup/system.slice/$thr/cpu.pressure)
	journal
	n=$(grep -c 'the stall is self-inflicted' "$RESULTS/governor.log")
	grep 'the stall is self-inflicted' "$RESULTS/governor.log" | head -2 | sed 's/^/  selfthrottle log: /'
	systemctl stop governor.service $thr $job
	systemctl reset-failed $thr $job 2>/dev/null || true
	cp "$RESULTS/governor.log" "$RESULTS/governor-selfthrottle.log"
	summary "selfthrottle_avg10=$a selfthrottle_batch_weight=$w selfthrottle_lines=$n"
	case $w in 100 | absent) ;; *) fail "selfthrottle: the built-in default squeezed batch.slice (cpu.weight $w) for a service's own CPUQuota" ;; esac
	[ "$n" = 1 ] || fail "selfthrottle: $n self-inflicted lines in the journal, want 1"
	grep -q "system.slice/$thr is self-throttled: its own cpu.max throttles it" "$RESULTS/governor.log" ||
		fail "selfthrottle: the journal does not name $thr and its throttling"
	log "ok: selfthrottle: $thr at cpu.some avg10=$a% under its own CPUQuota, batch.slice cpu.weight $w, said once"
}
leg selfthrottle && selfthrottle_leg

# The latency-sensitive service: a request every 10 ms, 3 ms of CPU each.
cat >/etc/systemd/system/$svc <<EOF
[Service]
ExecStart=$VMTEST/bin/vmload latency -period 10ms -work 3ms -for 2h
EOF
systemctl daemon-reload
systemctl start $svc || fail "$svc does not start"

# start_gov NAME: snapshot the state to give back, start the unit, note
# how long READY took (T_READY: when it came).
start_gov() {
	local t0
	snap "$RESULTS/$1.before"
	t0=$(now_ms)
	systemctl start governor.service || { journal; fail "$1: systemctl start governor failed"; }
	T_READY=$(now_ms)
	READY_MS=$((T_READY - t0))
	log "$1: governor.service active (READY) after $READY_MS ms"
}

# nothing_outside NAME TARGET_REGEX: snapshot the state the policy acts on
# and fail if a knob outside its targets changed since start_gov.
nothing_outside() {
	local name=$1
	snap "$RESULTS/$name.during"
	outside "$RESULTS/$name.before.files" "$RESULTS/$name.during.files" "$2" >"$RESULTS/$name.outside" 2>"$RESULTS/$name.notes"
	sed 's/^/  /' "$RESULTS/$name.notes"
	if [ -s "$RESULTS/$name.outside" ]; then
		cat "$RESULTS/$name.outside"
		fail "$name: knobs outside the policy's targets changed"
	fi
	log "ok: $name: nothing outside the targets ($2) written; $(grep -c . "$RESULTS/$name.notes") subtree_control change(s) by systemd"
}

# give_back NAME [RELOAD_CHECK]: daemon-reload (then RELOAD_CHECK must
# hold: what the policy did survives it), SIGKILL and systemd's restart,
# `systemctl stop`; then knob files, unit properties, subtree_control and
# runtime drop-ins must be as start_gov found them.
give_back() {
	local name=$1 check=${2:-} pid npid t0 bad=0 k
	systemctl daemon-reload
	sleep 3
	if [ -n "$check" ]; then
		$check || { journal; fail "$name: daemon-reload undid what the policy did"; }
		log "ok: $name: survives daemon-reload"
	fi

	pid=$(systemctl show -P MainPID governor.service)
	systemctl kill -s KILL governor.service
	active_again() {
		npid=$(systemctl show -P MainPID governor.service)
		[ "$(systemctl is-active governor.service)" = active ] && [ "$npid" != 0 ] && [ "$npid" != "$pid" ]
	}
	wait_for 90 active_again || { journal; fail "$name: governor not restarted after SIGKILL"; }
	log "ok: $name: restarted after SIGKILL (pid $pid -> $npid)"
	sleep 5

	t0=$(now_ms)
	systemctl stop governor.service
	log "$name: systemctl stop took $(($(now_ms) - t0)) ms"
	snap "$RESULTS/$name.after"
	if ! same_files "$RESULTS/$name.before.files" "$RESULTS/$name.after.files" >"$RESULTS/$name.diff.files" 2>"$RESULTS/$name.cameandwent"; then
		echo "--- $name: knob files differ from before start (- before, + after):"
		cat "$RESULTS/$name.diff.files"
		bad=1
	fi
	while read -r k d; do
		if [ "$k" = gone ] && ! ended_by_itself "$d"; then
			echo "--- $name: $d is gone, and its unit did not end by itself"
			bad=1
		else
			log "$name: $d $k while the leg ran (not the governor's doing), left out of the comparison"
		fi
	done <"$RESULTS/$name.cameandwent"
	for k in props dropins; do
		if ! diff -u "$RESULTS/$name.before.$k" "$RESULTS/$name.after.$k" >"$RESULTS/$name.diff.$k"; then
			echo "--- $name: $k differ from before start:"
			cat "$RESULTS/$name.diff.$k"
			bad=1
		fi
	done
	journal
	[ "$bad" = 0 ] || fail "$name: systemctl stop left systemd's or the kernel's state changed"
	log "ok: $name: after stop, knob files ($(wc -l <"$RESULTS/$name.after.files")), unit properties, subtree_control and runtime drop-ins are as before start"
	grep -E 'impossible|systemd enables|built-in default' "$RESULTS/governor.log" | sort -u | head -5 | sed "s/^/  $name log: /"
}

# run_case NAME POLICY_FILE TARGET_KNOB_UNIT TARGET_REGEX: one policy.
run_case() {
	local name=$1 pol=$2 tunit=$3 re=$4 t_sq a0 w0 w1 d
	rm -f /etc/governor/*.hcl
	[ -n "$pol" ] && install_policy "$pol" /etc/governor/"$(basename "$pol")"
	for j in $jobs; do
		systemd-run --quiet --unit="$j" --slice=batch.slice "$VMTEST/bin/vmload" burn -threads 2 -for 2h ||
			fail "$name: batch job $j does not start"
	done
	sleep 15 # pressure builds up: four busy threads and the service on 2 CPUs
	a0=$(avg10)
	log "$name: $svc cpu.some avg10=$a0% with the batch jobs running; batch.slice subtree_control: $(cat /sys/fs/cgroup/batch.slice/cgroup.subtree_control)"
	start_gov "$name"
	w0=$(cat "/sys/fs/cgroup/$tunit/cpu.weight" 2>/dev/null || echo absent)
	squeezed() {
		local w
		w=$(cat "/sys/fs/cgroup/$tunit/cpu.weight" 2>/dev/null) && [ "$w" -lt 100 ]
	}
	if ! wait_for 60 squeezed; then
		journal
		grep -i 'impossible\|observing\|trigger\|policy' "$RESULTS/governor.log" | head -20
		fail "$name: $tunit not squeezed within 60 s of READY (cpu.weight $(cat "/sys/fs/cgroup/$tunit/cpu.weight" 2>&1))"
	fi
	t_sq=$(now_ms)
	d=$((t_sq - T_READY))
	w1=$(cat "/sys/fs/cgroup/$tunit/cpu.weight")
	log "$name: $tunit cpu.weight $w0 -> $w1 after $d ms (the trigger's for = 5 s plus ticks; pressure was already high)"
	summary "${name}_avg10=$a0 ${name}_ready_ms=$READY_MS ${name}_squeeze_ms=$d"
	[ "$d" -le 20000 ] || fail "$name: squeeze took $d ms, want <= 20000 (for = 5 s, tick 1 s, under TCG)"

	sleep 8 # a few cooldowns more
	nothing_outside "$name" "$re"
	log "$name: $svc cpu.some avg10 now $(avg10)%"
	still_squeezed() {
		local w
		w=$(cat "/sys/fs/cgroup/$tunit/cpu.weight") && [ "$w" -lt 100 ] && log "$name: cpu.weight $w after daemon-reload"
	}
	give_back "$name" still_squeezed
	systemctl stop $jobs
	systemctl reset-failed $jobs 2>/dev/null || true
}

# The built-in default (empty /etc/governor): squeezes batch.slice itself.
if leg default; then
	run_case default "" batch.slice '^\./batch\.slice/(cpu\.weight|cpu\.max)$'
	grep -q 'using the built-in default policy' "$RESULTS/governor.log" || fail "default: the log does not say the built-in default runs"
	cp "$RESULTS/governor.log" "$RESULTS/governor-default.log"
fi

# examples/batch-node.hcl: squeezes each job; protects the services' memory.
leg batchnode && run_case batchnode "$ex/batch-node.hcl" batch.slice/vmt-job1.service \
	'^\./(batch\.slice/vmt-job[12]\.service/(cpu\.weight|cpu\.max|io\.weight|memory\.high)|system\.slice/web\.service/(memory\.low|memory\.min))$'

# bytes_of FROM JSON_KEY: sum the "KEY":"1.5MiB" fields of the journal's
# lines from line FROM on.
bytes_of() {
	tail -n +"$1" "$RESULTS/governor.log" | grep -o "\"$2\":\"[0-9.]*[KMG]\?i\?B\"" | awk -F'"' '
		{ n = $4 + 0; u = $4; sub(/^[0-9.]+/, "", u)
		  if (u == "KiB") n *= 1024; else if (u == "MiB") n *= 1048576; else if (u == "GiB") n *= 1073741824
		  t += n } END { printf "%d\n", t }'
}
some_total() { awk '/^some/ { sub("total=", "", $5); print $5 }' "$1/memory.pressure"; }

# examples/proactive-reclaim.hcl on a docker host with the systemd cgroup
# driver: a container is a transient scope system.slice/docker-<id>.scope.
# It holds 256 MiB of page cache read once (cold) and 64 MiB of anonymous
# memory it keeps touching (hot); no swap, as on a stock node. Reclaim
# (interval 6 s, step 1% ramping x2, at most 64 MiB, not below 128 MiB)
# must take at least 96 MiB of the cold cache within 60 s of READY while
# the scope's memory stall stays under the goal (0.1%).
reclaim_leg() {
	local name=reclaim id scope cg m0 m1 t_r d s0 s1 w0 w1 req rec n stall from
	journal
	from=$(($(wc -l <"$RESULTS/governor.log") + 1))
	id=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	scope=docker-$id.scope
	cg=/sys/fs/cgroup/system.slice/$scope
	rm -f /etc/governor/*.hcl /run/stock-cached
	install_policy "$ex/proactive-reclaim.hcl" /etc/governor/proactive-reclaim.hcl
	dd if=/dev/zero of=/scratch/stock-cache bs=1M count=256 oflag=direct status=none || fail "$name: dd"
	systemd-run --quiet --scope --unit="$scope" --slice=system.slice sh -c \
		"cat /scratch/stock-cache >/dev/null; touch /run/stock-cached; exec $VMTEST/bin/vmload anon -size 64M -hot 100" \
		>"$RESULTS/$name.container.out" 2>&1 &
	units=$scope
	cached() { [ -f /run/stock-cached ] && [ "$(cat "$cg/memory.current")" -ge $((310 << 20)) ]; }
	wait_for 60 cached || fail "$name: $scope never held its cache and anonymous memory ($(cat "$cg/memory.current" 2>&1))"
	m0=$(cat "$cg/memory.current")
	log "$name: $scope memory.current $(mib "$m0") MiB (file $(awk '$1 == "file" { print int($2 / 1048576) }' "$cg/memory.stat") MiB); swap: $(awk 'NR > 1' /proc/swaps | wc -l) device(s)"
	start_gov "$name"
	if [ ! -e "$cg/memory.reclaim" ]; then
		# Linux < 5.19 (Debian 11): the controller cannot act; it must say so.
		sleep 5
		journal
		governor validate --host /etc/governor/proactive-reclaim.hcl >"$RESULTS/$name.validate" 2>&1
		n=$?
		sed 's/^/  validate: /' "$RESULTS/$name.validate"
		[ "$n" = 3 ] || fail "$name: governor validate --host exits $n on a kernel without memory.reclaim, want 3"
		grep -q 'containers-footprint.*memory.reclaim' "$RESULTS/$name.validate" || fail "$name: validate --host does not name memory.reclaim"
		grep -q 'impossible on this host.*containers-footprint.*memory.reclaim' "$RESULTS/governor.log" ||
			fail "$name: the journal does not say that containers-footprint cannot act"
		log "ok: $name: no memory.reclaim on this kernel: the journal and validate --host (exit 3) say so"
		summary "${name}_ready_ms=$READY_MS ${name}=no-memory.reclaim"
	else
		s0=$(some_total "$cg")
		w0=$(now_ms)
		dropped() { [ "$(cat "$cg/memory.current")" -le $((m0 - (96 << 20))) ]; }
		wait_for 60 dropped || { journal; fail "$name: $scope not reclaimed by 96 MiB within 60 s of READY ($(mib "$m0") -> $(mib "$(cat "$cg/memory.current")") MiB)"; }
		t_r=$(now_ms)
		d=$((t_r - T_READY))
		sleep 6 # one interval more: the figure, and no backoff yet
		m1=$(cat "$cg/memory.current")
		s1=$(some_total "$cg")
		w1=$(now_ms)
		stall=$(awk -v s=$((s1 - s0)) -v w=$((w1 - w0)) 'BEGIN { printf "%.3f", s / (w * 10) }')
		journal
		n=$(tail -n +"$from" "$RESULTS/governor.log" | grep -c '"knob":"memory.reclaim"')
		req=$(bytes_of "$from" requested)
		rec=$(bytes_of "$from" reclaimed)
		tail -n +"$from" "$RESULTS/governor.log" | grep '"knob":"memory.reclaim"' | head -3 | sed "s/^/  $name audit: /"
		log "$name: $scope memory.current $(mib "$m0") -> $(mib "$m1") MiB, 96 MiB gone $d ms after READY; $n writes, requested $(mib "$req") MiB, reclaimed $(mib "$rec") MiB; memory stall ${stall}% of the time"
		summary "${name}_ready_ms=$READY_MS ${name}_96mib_ms=$d ${name}_mib=$(mib "$m0")->$(mib "$m1") ${name}_writes=$n ${name}_requested_mib=$(mib "$req") ${name}_reclaimed_mib=$(mib "$rec") ${name}_stall_pct=$stall"
		[ "$n" -ge 1 ] && [ "$rec" -gt 0 ] || fail "$name: no audit line with requested and reclaimed"
		awk -v s="$stall" 'BEGIN { exit !(s <= 0.1) }' || fail "$name: the scope's memory stall ${stall}% is above the goal (0.1%)"
		[ "$m1" -ge $((120 << 20)) ] || fail "$name: reclaimed below min_size (128 MiB) and the hot set: $(mib "$m1") MiB"
	fi
	nothing_outside "$name" '^$'
	give_back "$name"
	systemctl stop "$scope"
	units=
	rm -f /scratch/stock-cache /run/stock-cached
}
leg reclaim && reclaim_leg

# examples/desktop.hcl on a desktop: a user is logged in
# (user@UID.service; from systemd 252 on it is delegated the cpu
# controller, which turns cpu on at the root) and the session's shell
# (session.slice) has launched app-vmt-editor.scope in app.slice, which
# burns CPU 0; a batch job in batch.slice burns CPU 0 too. Then the
# governor starts. The rule background-idle must set batch.slice's
# cpu.idle to 1 once the interactive class's cpu.some avg10 has been above
# 5% for 2 s (pressure is already high: plus ticks); a kernel without
# cpu.idle (Linux < 5.15, Debian 11) must be named in the journal and by
# validate --host (exit 3). (The session starts first: the governor plans
# from the controllers enabled when it starts, see README.md.)
desktop_leg() {
	local name=desktop job=vmt-job1.service app shell=vmt-shell.service a0 a1 t_job d n rdir=/run/user/$duid
	rm -f /etc/governor/*.hcl
	install_policy "$ex/desktop.hcl" /etc/governor/desktop.hcl
	# Before the first login nobody has enabled cpu (the legs before
	# restored everything), unless the VM runner's cfs bandwidth pin did.
	# systemd 252+ enables it for CPUWeight=idle, which the governor sets
	# for a unit's cpu.idle: a governor started at boot can act then, and
	# validate --host says so.
	if grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control; then
		log "$name: cpu is on at the root before login (the runner's cfs bandwidth pin, test/vm/README.md): validate --host's cpu-off case not checked"
	elif grep -qw cpu_idle_write_s64 /proc/kallsyms && [ "$(systemctl --version | awk 'NR == 1 { print $2 }')" -ge 252 ]; then
		governor validate --host /etc/governor/desktop.hcl >"$RESULTS/$name.validate-boot" 2>&1
		n=$?
		sed 's/^/  validate before login: /' "$RESULTS/$name.validate-boot"
		[ "$n" = 0 ] || fail "$name: before login (cpu off), validate --host exits $n, want 0: systemd 252+ enables cpu for CPUWeight=idle"
		grep -q 'background-idle.*cpu.idle needs the cpu controller.*systemd enables it' "$RESULTS/$name.validate-boot" ||
			fail "$name: before login, validate --host does not say that systemd enables cpu for cpu.idle"
		log "ok: $name: before login (cpu off at the root) cpu.idle is possible through systemd's CPUWeight=idle"
	fi
	useradd -m -u "$duid" -s /bin/sh "$duser" || fail "$name: useradd"
	# What a login does first: logind has user-runtime-dir@UID.service
	# make /run/user/UID, and pam_systemd gives the user manager
	# XDG_RUNTIME_DIR. The guest has neither logind (nor D-Bus, which the
	# directory's helper asks) nor pam_systemd, so two runtime drop-ins do
	# those two things; the user manager itself is the stock one.
	mkdir -p "/run/systemd/system/user-runtime-dir@$duid.service.d" "/run/systemd/system/user@$duid.service.d"
	printf '[Service]\nExecStart=\nExecStart=/bin/sh -c "mkdir -p %s && chown %s:%s %s && chmod 0700 %s"\nExecStop=\nExecStop=/bin/rm -rf %s\n' \
		"$rdir" "$duid" "$duid" "$rdir" "$rdir" "$rdir" >"/run/systemd/system/user-runtime-dir@$duid.service.d/vmtest.conf"
	printf '[Service]\nEnvironment=XDG_RUNTIME_DIR=%s\n' "$rdir" >"/run/systemd/system/user@$duid.service.d/vmtest.conf"
	systemctl daemon-reload
	if ! systemctl start "user@$duid.service"; then
		journalctl -b --no-pager -o cat -u "user@$duid.service" -u "user-runtime-dir@$duid.service" | tail -20
		fail "$name: user@$duid.service does not start"
	fi
	wait_for 30 test -S "$rdir/systemd/private" || fail "$name: the user manager's socket never appeared"
	log "$name: user@$duid.service up; root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
	runuser -u "$duser" -- env XDG_RUNTIME_DIR="$rdir" systemd-run --user --quiet --slice=session.slice --unit=$shell \
		sh -c "systemd-run --user --quiet --scope --slice=app.slice --unit=app-vmt-editor.scope taskset -c 0 $VMTEST/bin/vmload burn -threads 1 -for 2h & wait" ||
		fail "$name: the session's shell does not start"
	app=/sys/fs/cgroup/user.slice/user-$duid.slice/user@$duid.service/app.slice/app-vmt-editor.scope
	wait_for 30 test -d "$app" || fail "$name: $app never appeared"
	systemd-run --quiet --unit=$job --slice=batch.slice taskset -c 0 "$VMTEST/bin/vmload" burn -threads 2 -for 2h ||
		fail "$name: batch job does not start"
	sleep 5 # the app's cpu.some avg10 climbs
	a0=$(awk '/^some/ { sub("avg10=", "", $2); print $2 }' "$app/cpu.pressure")
	units="user@$duid.service"
	# session-memory: 1 GiB memory.low on the user manager's unit, through
	# systemd (its MemoryLow=), at the first tick; the session's own
	# cgroups are the user's (not the governor's to write): no write to
	# them may have failed.
	session_low() {
		local u=/sys/fs/cgroup/user.slice/user-$duid.slice/user@$duid.service
		wait_for 20 grep -qx 1073741824 "$u/memory.low" ||
			fail "$name: user@$duid.service memory.low $(cat "$u/memory.low"), want 1GiB within 20 s"
		[ "$(systemctl show -P MemoryLow "user@$duid.service")" = 1073741824 ] ||
			fail "$name: memory.low not through systemd: MemoryLow=$(systemctl show -P MemoryLow "user@$duid.service")"
		# This leg's part of the journal only.
		if journalctl -u governor.service --no-pager -o cat --since "@$(((T_READY - READY_MS) / 1000 - 1))" | grep '"action failed"' >"$RESULTS/$name.failed"; then
			head -3 "$RESULTS/$name.failed"
			fail "$name: a write failed"
		fi
		log "ok: $name: user@$duid.service MemoryLow=1G through systemd; $(grep -o 'memory_recursiveprot' /proc/mounts | head -1 || echo 'no memory_recursiveprot')"
	}
	start_gov "$name"
	if [ ! -e /sys/fs/cgroup/batch.slice/cpu.idle ] && ! grep -qw cpu_idle_write_s64 /proc/kallsyms; then
		# Linux < 5.15 (Debian 11): cpu.idle does not exist; it must say so.
		sleep 5
		journal
		governor validate --host /etc/governor/desktop.hcl >"$RESULTS/$name.validate" 2>&1
		n=$?
		sed 's/^/  validate: /' "$RESULTS/$name.validate"
		[ "$n" = 3 ] || fail "$name: governor validate --host exits $n on a kernel without cpu.idle, want 3"
		grep -q 'background-idle.*kernel has no cpu.idle' "$RESULTS/$name.validate" || fail "$name: validate --host does not name cpu.idle"
		grep -q 'impossible on this host.*background-idle.*kernel has no cpu.idle' "$RESULTS/governor.log" ||
			fail "$name: the journal does not say that background-idle cannot act: $(grep background-idle "$RESULTS/governor.log" | head -3)"
		log "ok: $name: no cpu.idle on this kernel: the journal and validate --host (exit 3) say so"
		summary "${name}_ready_ms=$READY_MS ${name}=no-cpu.idle"
		session_low
		nothing_outside "$name" '^\./user\.slice/user-[0-9]*\.slice/user@[0-9]*\.service/memory\.low$'
		give_back "$name"
	else
		idle() { [ "$(cat /sys/fs/cgroup/batch.slice/cpu.idle 2>/dev/null)" = 1 ]; }
		if ! wait_for 30 idle; then
			journal
			grep -i 'impossible\|observing\|background-idle' "$RESULTS/governor.log" | head -10
			fail "$name: batch.slice cpu.idle not 1 within 30 s of READY (cpu.idle $(cat /sys/fs/cgroup/batch.slice/cpu.idle 2>&1), app cpu.some avg10 $(awk '/^some/ { print $2 }' "$app/cpu.pressure"))"
		fi
		d=$(($(now_ms) - T_READY))
		sleep 10
		a1=$(awk '/^some/ { sub("avg10=", "", $2); print $2 }' "$app/cpu.pressure")
		log "$name: batch.slice cpu.idle 0 -> 1 $d ms after READY (app cpu.some avg10 $a0% before, $a1% 10 s after)"
		summary "${name}_ready_ms=$READY_MS ${name}_idle_ms=$d ${name}_app_avg10=$a0->$a1"
		[ "$d" -le 20000 ] || fail "$name: cpu.idle took $d ms, want <= 20000 (avg10 > 5% for 2 s, tick 1 s, under TCG; pressure already high)"
		# While cpu.idle is 1 the kernel shows batch.slice's cpu.weight as 0
		# (and gives the old weight back when it goes to 0).
		session_low
		nothing_outside "$name" '^\./(batch\.slice/(cpu\.idle|cpu\.weight)|user\.slice/user-[0-9]*\.slice/user@[0-9]*\.service/memory\.low)$'
		# systemd 252+ writes a unit's cpu.idle from CPUWeight= on every
		# daemon-reload (252 set batch.slice's back to 0 when the governor
		# wrote cgroupfs, and the governor handed the knob back); the
		# governor sets CPUWeight=idle, so it must survive the reload.
		reload_idle() {
			local v
			v=$(cat /sys/fs/cgroup/batch.slice/cpu.idle)
			summary "${name}_idle_after_reload=$v"
			log "$name: batch.slice cpu.idle $v after daemon-reload (1 before); CPUWeight=$(systemctl show -P CPUWeight batch.slice)"
			[ "$v" = 1 ]
		}
		give_back "$name" reload_idle
	fi
	systemctl stop $job
	systemctl reset-failed $job 2>/dev/null || true
	units=
	systemctl stop "user@$duid.service" "user-runtime-dir@$duid.service"
	userdel -r "$duser" 2>/dev/null
	rm -rf "/run/systemd/system/user-runtime-dir@$duid.service.d" "/run/systemd/system/user@$duid.service.d"
	systemctl daemon-reload
}
leg desktop && desktop_leg
log "PASS: the four policies acted in time, touched only their targets and left no trace"
exit 0
