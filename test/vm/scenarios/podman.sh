# Scenario "podman": the container image of `make image` run under podman
# (Debian's package, trixie guest) as examples/kubernetes's DaemonSet runs
# it: the manifest's args, env and memory limit; privileged, host PID and
# cgroup namespaces, read-only root; its host mounts (/sys/fs/cgroup at
# /host/sys/fs/cgroup, /sys/kernel/btf, /run/systemd, /run/governor) and
# its ConfigMap's policy in a directory laid out as kubelet lays out a
# ConfigMap volume (a 0777 volume directory, a timestamped data directory,
# the ..data symlink, root's 0444 files), bind-mounted read-only at
# /etc/governor. Two systemd units stand for pods: a "services" pod and a
# BestEffort "batch" pod that share the CPUs. Asserted: the same layout
# mounted writable is refused; the container governs the host: the
# ConfigMap policy's batch-yields-cpu halves the batch pod's cpu.weight
# while the services pod waits for CPU; the liveness probe and
# `admission` answer inside the container; `podman stop` (SIGTERM) ends
# it with exit 0 and no knob on the host is left changed.
#
# run.sh builds the OCI archive on the host with cmd/governor-image (what
# `make image` runs) into /opt/vmtest/oci when this scenario is on the
# list. The guest has no network and no overlay module: podman loads the
# archive into vfs storage on the scratch disk, and runs containers with
# chroot in place of pivot_root (the guest's root is the initramfs, from
# which pivot_root is refused) and the cgroupfs manager (no D-Bus daemon
# in the image; the governor itself uses systemd's private socket).
set -u
. "$VMTEST/lib.sh"

tar=$VMTEST/oci/governor.tar
yaml=$VMTEST/oci/governor-daemonset.yaml
[ -f "$tar" ] || skip "no OCI archive in $VMTEST/oci: run.sh stages it when SCENARIOS names podman"
command -v podman >/dev/null || skip "podman is not in this guest image (test/vm/packages.txt: trixie only)"

svc=vmt-svc.service batch=vmt-batch.service
svcslice=kubepods-podvmtsvc.slice
batchcg=/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/$batch

mkdir -p /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/90-vmtest.conf <<-'CONF'
[containers]
log_driver = "k8s-file"
[engine]
no_pivot_root = true
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
store=/var/lib/containers/storage
mountpoint -q /scratch && store=/scratch/containers
pm() { podman --storage-driver=vfs --root="$store" "$@"; }

cleanup() {
	pm logs governor >"$RESULTS/governor.log" 2>&1
	pm rm -f -t 5 governor governor-rw >/dev/null 2>&1
	systemctl stop $svc $batch 2>/dev/null
	systemctl reset-failed 2>/dev/null
}
trap cleanup EXIT


# The DaemonSet, read from the manifest: the container's args (the list
# items between "args:" and "env:"), GOMEMLIMIT, the memory limit, the
# grace period and the ConfigMap's node.hcl.
mapfile -t args < <(sed -n '/^ *args:$/,/^ *env:$/p' "$yaml" | sed -n 's/^ *- \([^ #]*\)$/\1/p')
memlimit=$(sed -n 's/^ *GOMEMLIMIT.*value: "\([^"]*\)".*/\1/p; s/^ *- {name: GOMEMLIMIT, value: "\([^"]*\)"}$/\1/p' "$yaml" | head -1)
limit=$(sed -n 's/^ *limits: {.*memory: \([0-9]*\)Mi}$/\1/p' "$yaml" | head -1)
grace=$(sed -n 's/^ *terminationGracePeriodSeconds: \([0-9]*\)$/\1/p' "$yaml")
log "args: ${args[*]}; GOMEMLIMIT=$memlimit; memory limit ${limit}Mi; grace ${grace}s"
check "the manifest's args start with run and name /etc/governor" \
	test "${args[0]:-}" = run -a -n "$(printf '%s\n' "${args[@]}" | grep -x -- --config=/etc/governor)"
check "the manifest gives GOMEMLIMIT, a memory limit and a grace period" test -n "$memlimit" -a -n "$limit" -a -n "$grace"

# kubelet's layout of a ConfigMap volume.
vol=/var/lib/kubelet/pods/0e1d2c3b-vmt/volumes/kubernetes.io~configmap/policy
ts=..2026_12_06_11_00_00.000000001
mkdir -p "$vol/$ts"
sed -n '/^  node.hcl: |$/,/^---$/p' "$yaml" | sed '1d;$d; s/^    //' >"$vol/$ts/node.hcl"
chmod 0444 "$vol/$ts/node.hcl"
chmod 0755 "$vol/$ts"
chmod 0777 "$vol"
ln -s "$ts" "$vol/..data"
ln -s ..data/node.hcl "$vol/node.hcl"
ls -la "$vol" "$vol/$ts" >"$RESULTS/configmap-layout.txt"
cp "$vol/node.hcl" "$RESULTS/node.hcl"
check "the ConfigMap policy validates" "$GOVERNOR" validate "$vol/$ts/node.hcl"

# Two pods: services (2 CPU burners) and BestEffort batch (4), equal
# weights. They burn once /run/vmt-go exists: podman under TCG is slow
# enough without them.
rm -f /run/vmt-go
pod() {
	systemd-run -q --unit="$1" --slice="$2" -p CPUWeight=100 -p MemoryAccounting=yes /bin/bash -c \
		"while [ ! -e /run/vmt-go ]; do sleep 0.2; done; exec $VMTEST/bin/vmload burn -threads $3 -for 900s"
}
pod $svc $svcslice 2 || fail "services pod"
pod $batch kubepods-besteffort.slice 4 || fail "batch pod"
check "batch pod's cgroup is where the ConfigMap's class looks" test -r "$batchcg/cpu.weight"
mkdir -p /run/governor /run/systemd
before=$RESULTS/knobs-before.txt
knobs >"$before"

t0=$SECONDS
pm load -i "$tar" >"$RESULTS/podman-load.txt" 2>"$RESULTS/podman-load.err" || { cat "$RESULTS/podman-load.err"; fail "podman load"; }
image=$(sed -n 's/^Loaded image[s]*: *//p' "$RESULTS/podman-load.txt" | head -1 | cut -d, -f1)
[ -n "$image" ] || fail "podman load named no image: $(cat "$RESULTS/podman-load.txt")"
load_s=$((SECONDS - t0))
log "loaded $image in ${load_s}s"
pm images >"$RESULTS/podman-images.txt" 2>&1

# podman run with the DaemonSet's privileges and mounts; POLICY_MODE is
# ro (the DaemonSet's) or rw.
run() {
	local name=$1 mode=$2
	shift 2
	pm run "$@" --name "$name" --privileged --pid=host --cgroupns=host --network=none \
		--read-only --read-only-tmpfs=false --memory="${limit}m" --stop-timeout="$grace" \
		-e GOMEMLIMIT="$memlimit" \
		-v /sys/fs/cgroup:/host/sys/fs/cgroup -v /sys/kernel/btf:/sys/kernel/btf:ro \
		-v /run/systemd:/run/systemd -v /run/governor:/run/governor \
		-v "$vol:/etc/governor:$mode" \
		"$image" "${args[@]}"
}

# The same layout mounted writable: refused (the 0777 directory).
exited() { [ "$(pm inspect -f '{{.State.Status}}' "$1" 2>/dev/null)" = exited ]; }
run governor-rw rw -d >"$RESULTS/podman-run-rw.txt" 2>&1 || { cat "$RESULTS/podman-run-rw.txt"; fail "podman run (rw)"; }
check "the container with a writable policy mount exits" wait_for 180 exited governor-rw
rc=$(pm inspect -f '{{.State.ExitCode}}' governor-rw)
pm logs governor-rw >"$RESULTS/rw-mount.log" 2>&1
pm rm -f governor-rw >/dev/null 2>&1
log "writable mount: exit $rc: $(grep -o 'nsecure[^"]*' "$RESULTS/rw-mount.log" | head -1)"
check "writable policy mount refused (exit $rc)" test "$rc" != 0
check "the refusal names the insecure directory" grep -q "nsecure policy directory" "$RESULTS/rw-mount.log"

t0=$SECONDS
run governor ro -d >"$RESULTS/podman-run.txt" 2>&1 || { cat "$RESULTS/podman-run.txt"; fail "podman run"; }
governing() { pm logs governor 2>&1 | grep -q '"@message":"governing"'; }
check "the container logs that it is governing" wait_for 180 governing
start_s=$((SECONDS - t0))
log "governing ${start_s}s after podman run"
pm logs governor 2>&1 | grep -v DEBUG | head -20

# The ConfigMap's suppress: services wait for CPU, batch's weight halves.
check "batch pod's cpu.weight still 100 before the load" test "$(cat "$batchcg/cpu.weight")" = 100
touch /run/vmt-go
moved() { [ "$(cat "$batchcg/cpu.weight")" -lt 100 ]; }
t0=$SECONDS
check "batch pod's cpu.weight halved under load" wait_for 180 moved
move_s=$((SECONDS - t0))
log "batch cpu.weight $(cat "$batchcg/cpu.weight") after ${move_s}s; services cpu.pressure: $(head -1 /sys/fs/cgroup/kubepods.slice/$svcslice/$svc/cpu.pressure)"
check "the weight went through systemd (CPUWeight of $batch)" test "$(systemctl show -P CPUWeight $batch)" -lt 100

# The liveness probe and admission, inside the container.
probe=$(sed -n 's/^ *command: \["\/usr\/bin\/governor", \(.*\)\]$/\1/p' "$yaml" | tr -d '",')
check "liveness probe (governor $probe) answers" pm exec governor /usr/bin/governor $probe
pm exec governor /usr/bin/governor admission --socket=/run/governor/control.sock >"$RESULTS/admission.txt" 2>&1
rc=$?
log "admission (exit $rc): $(cat "$RESULTS/admission.txt")"
check "admission answers (exit 0 or 1, not 2)" test "$rc" = 0 -o "$rc" = 1
check "admission gives a verdict" grep -q "accepting" "$RESULTS/admission.txt"
rss=$(awk '/^VmRSS/ { print $2 }' /proc/"$(pm inspect -f '{{.State.Pid}}' governor)"/status)
log "governor RSS ${rss} kB"

# podman stop: SIGTERM, every knob restored, exit 0.
t0=$SECONDS
pm stop governor >/dev/null || fail "podman stop"
stop_s=$((SECONDS - t0))
code=$(pm inspect -f '{{.State.ExitCode}}' governor)
pm logs governor >"$RESULTS/governor.log" 2>&1
check "the container exits 0 on SIGTERM (exit $code, ${stop_s}s)" test "$code" = 0
check "it logged that it restored its knobs" grep -q "restored every changed knob" "$RESULTS/governor.log"
check "batch pod's cpu.weight back to 100" test "$(cat "$batchcg/cpu.weight")" = 100
after=$RESULTS/knobs-after.txt
knobs >"$after"
declare -A was
while read -r p k v; do was["$p $k"]=$v; done <"$before"
changed=
while read -r p k v; do
	if [ -n "${was["$p $k"]+set}" ] && [ "${was["$p $k"]}" != "$v" ]; then
		changed="$changed$p $k: ${was["$p $k"]}-> $v; "
	fi
done <"$after"
printf '%s\n' "$changed" >"$RESULTS/knobs-changed.txt"
check "no knob on the host changed after stop${changed:+: $changed}" test -z "$changed"

summary "load_s=$load_s start_s=$start_s move_s=$move_s stop_s=$stop_s rss_kb=$rss image_kb=$(($(stat -c %s "$tar") / 1024))"
