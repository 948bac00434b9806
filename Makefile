# governor — build, test and generate.
GO      ?= go
BIN     ?= bin/governor
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test test-root check generate lint

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/governor

# The daemon in the foreground, on this host (as root): builds $(BIN) and
# execs it with ARGS (make run ARGS="--dry-run --config my.hcl"). The shell
# of the recipe is replaced by the daemon, so make waits on the daemon
# itself: Ctrl-C reaches it with the terminal's process group, and GNU
# make passes a SIGTERM it receives on to it; either way it restores every
# changed knob and exits, and make with it. (`go run` would leave the
# daemon running when it is sent SIGTERM.) Other signals (SIGHUP to reload)
# go to the daemon's own pid: pkill -HUP -x governor.
.PHONY: run
ARGS ?=
run: build
	exec $(BIN) run $(ARGS)

# Unit tests (fixture trees, fakes) plus, as root, the tests against this
# host's cgroup2 hierarchy, PSI and BPF. Without root those skip.
# What a person should look at afterwards goes to $(ARTIFACTS) (CI keeps
# build/artifacts): the report the Chromium test rendered and its
# screenshot (report-chromium.html, .png); vm-test adds DISTRO/SCENARIO/
# with each scenario's results, flight recordings and their reports.
ARTIFACTS ?= $(CURDIR)/build/artifacts
# -p 1: one package at a time. As root, bpf/ and cgroup/ test against the
# host's kernel: bpf/'s CPU hogs on both CPUs, run beside cgroup/'s
# thousand sleeping tasks as they start, leave those cgroups' pressure
# averages non-zero for minutes, and cgroup/ then reads what it should skip.
test: deps-test
	GOVERNOR_ARTIFACTS=$(ARTIFACTS) $(GO) test -p 1 -count=1 ./...

# Tools some tests use when present: promtool (Debian package prometheus)
# checks the metrics exposition format, lintian the .deb of `make deb`,
# headless Chromium renders `governor report`'s HTML.
# Installed as root (apt lists refreshed by the first); otherwise the
# checks that need them skip.
.PHONY: deps-test
deps-test:
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || \
		echo "deps-test: promtool not installed; the metrics format check will skip"
	@command -v lintian >/dev/null || { [ "$$(id -u)" = 0 ] && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null; } || \
		echo "deps-test: lintian not installed; the package test will not lint the .deb"
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "deps-test: chromium not installed; the report's browser test will skip"

# The binary, the systemd unit (plus a Type=notify drop-in for systemd
# before 253) and the operations guide; then: systemctl enable --now governor.
.PHONY: install
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)/usr/local/bin/governor
	install -D -m 0644 examples/governor.service $(DESTDIR)/etc/systemd/system/governor.service
	install -D -m 0644 docs/OPERATIONS.md $(DESTDIR)/usr/local/share/doc/governor/OPERATIONS.md
	install -d -m 0755 $(DESTDIR)/etc/governor
	@ls $(DESTDIR)/etc/governor/*.hcl >/dev/null 2>&1 || \
		install -m 0644 policies/default.hcl $(DESTDIR)/etc/governor/default.hcl
	@v=$$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $$2 }'); \
	if [ -n "$$v" ] && [ "$$v" -lt 253 ]; then \
		echo "systemd $$v has no Type=notify-reload: adding governor.service.d/10-before-systemd-253.conf"; \
		install -D -m 0644 examples/governor.service.d/10-before-systemd-253.conf \
			$(DESTDIR)/etc/systemd/system/governor.service.d/10-before-systemd-253.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# The whole suite, what CI runs (.ci/run): lint, the stale-BPF-output check,
# unit and host tests, a short bounded fuzz run of every fuzz target, then
# the scenarios and the BPF tests on a real cgroup v2 kernel under QEMU.
check: lint generate-check test fuzz-ci vm-test test-bpf-vm vm-test-releases

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfel\.go$$'))" || { gofmt -l .; exit 1; }

# Real-kernel tests: a Debian guest under QEMU (TCG), see test/vm/README.md.
# vm-image builds or reuses the cached guest image under build/vm/;
# vm-test also runs the scenarios (SCENARIOS="bed reclaim" picks some) and
# leaves their results, recordings and reports in $(ARTIFACTS)/DISTRO/.
.PHONY: vm-image vm-test
vm-image:
	VM_SUITE=$${DISTRO:-bookworm} test/vm/build-image.sh

vm-test:
	ARTIFACTS_DIR=$(ARTIFACTS) test/vm/run.sh

# DISTRO=bullseye|bookworm|trixie picks the guest's Debian release for
# vm-test, vm-image and test-bpf-vm (default bookworm; images are cached
# per release in build/vm-DISTRO). vm-test-releases is what `make check`
# adds to bookworm's full run, one boot per release: on Debian 13 (6.12,
# systemd 257) and Debian 11 (5.10, systemd 247) the scenarios whose
# outcome depends on the release (the kernel's cgroup files, systemd's
# unit handling, the shipped unit and policies, the package, podman) and
# not those that measure the engine's control (reclaim, coloc, blame,
# reaction, reclaimanon, selfthrottle), which bookworm runs; stocknode
# there without its self-throttle leg, which bookworm's stocknode and
# selfthrottle carry (STOCKNODE_LEGS). `make vm-test DISTRO=trixie` (no SCENARIOS) still
# runs every scenario there. Budget and measured times: test/vm/README.md,
# Releases.
VM_RELEASE_KNOBS = MEMHIGH_SECONDS=60 STOCKNODE_LEGS=default.batchnode.reclaim.desktop
TRIXIE_SCENARIOS = bed lifecycle memhigh runaway systemd stocknode package podman
BULLSEYE_SCENARIOS = lifecycle memhigh systemd stocknode reclaimanon package
.PHONY: vm-test-releases
vm-test-releases:
	DISTRO=trixie SCENARIOS="$(TRIXIE_SCENARIOS)" $(VM_RELEASE_KNOBS) ARTIFACTS_DIR=$(ARTIFACTS) test/vm/run.sh
	DISTRO=bullseye SCENARIOS="$(BULLSEYE_SCENARIOS)" $(VM_RELEASE_KNOBS) ARTIFACTS_DIR=$(ARTIFACTS) test/vm/run.sh

# ---- reliability: fuzzing and churn (docs/RELIABILITY.md) ------------------
# `fuzz` runs every fuzz target for FUZZTIME each (go test -fuzz takes one
# target at a time); a crasher lands in <pkg>/testdata/fuzz/<Target>/, runs
# as a regression test with plain `go test` and is committed. Go 1.26 can
# end a timed run with a bare "context deadline exceeded" on a loaded machine
# (go.dev/issue/75804): that run is reported without its FAIL lines and
# run once more; a second such ending is reported and not counted. `fuzz-ci` is
# the short bounded run for `make check`. `churn-long` creates and removes
# 1,000 cgroups a minute for 10 minutes on this host's cgroup2 hierarchy
# while a Loop governs them (root), and checks fds, goroutines, heap and
# BPF map entries return to their starting level.
.PHONY: fuzz fuzz-ci churn-long
FUZZTIME    ?= 20s
FUZZCI_TIME ?= 5s
FUZZ_TARGETS = \
	./cgroup:FuzzParsePressure ./cgroup:FuzzParseIOStat ./cgroup:FuzzParseKeyed \
	./cgroup:FuzzPressureRoundTrip ./cgroup:FuzzMemoryStat ./cgroup:FuzzMemoryEvents \
	./cgroup:FuzzCPUStat ./cgroup:FuzzCPUMax ./cgroup:FuzzIOStatRoundTrip \
	./cgroup:FuzzIOWeight ./cgroup:FuzzEvents ./cgroup:FuzzValue ./internal/procfs:FuzzMountinfo \
	./internal/procfs:FuzzParseProcCgroup \
	./policies:FuzzLoadSource ./policies:FuzzLoadSourceInvariants \
	./policies:FuzzCheckShape ./policies:FuzzPolicyStep \
	./governor:FuzzRecoverState \
	./governor/record:FuzzReader ./governor/record:FuzzDecodeTick \
	./governor/record:FuzzParseShortNum ./governor/record:FuzzAppendNum

fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t#*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg >"$$log" 2>&1; then \
	      grep -v 'execs:' "$$log" || true; grep 'execs:' "$$log" | tail -n 1; break; fi; \
	    if ! grep -q '^    context deadline exceeded$$' "$$log" || grep -q 'Failing input written' "$$log"; then \
	      cat "$$log"; exit 1; fi; \
	    echo "$$name: run $$try ended in 'context deadline exceeded' without a crasher: the fuzz coordinator's shutdown race (go.dev/issue/75804, fixed in Go 1.27), not a finding"; \
	    grep 'execs:' "$$log" | tail -n 1; \
	  done; \
	done

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZCI_TIME)

churn-long:
	GOVERNOR_CHURN_LONG=1 $(GO) test -count=1 -timeout 20m -run 'TestChurnLong' -v ./cgroup

# ---- bpf: BPF sensors (bpf/) ----------------------------------------------
# The bpf2go output (bpf/*_bpfel.go, bpf/*_bpfel.o) is committed, so build
# and test need no clang. `generate` rebuilds it with Debian's clang and
# libbpf headers (installed if missing); `generate-check` fails when the
# committed output is stale; `test-bpf` runs the privileged tests (root),
# `test-bpf-vm` runs them in the QEMU guest of test/vm;
# `bench-bpf` measures the programs' cost next to bpftrace's runqlat.bt
# (see bpf/BENCH.md).
.PHONY: bpf-deps generate-check test-bpf test-bpf-vm bench-bpf
BPF_BENCH_SECONDS ?= 10

bpf-deps:
	@if ! command -v clang >/dev/null || ! command -v llvm-strip >/dev/null || \
	   ! test -f /usr/include/bpf/bpf_helpers.h; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev; fi

generate: bpf-deps
	$(GO) generate ./bpf

generate-check: bpf-deps
	@set -e; tmp=$$(mktemp -d bpf/.gencheck.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	cp -r bpf/c bpf/gen.go "$$tmp"/; \
	(cd "$$tmp" && $(GO) generate .); \
	for f in governor_bpfel.go governor_bpfel.o cgmoves_bpfel.go cgmoves_bpfel.o; do \
	  cmp -s "$$tmp/$$f" "bpf/$$f" || { echo "bpf/$$f is stale: run 'make generate' and commit it" >&2; exit 1; }; \
	done; echo "bpf: generated files are up to date"

test-bpf:
	$(GO) test -count=1 -v ./bpf

# The same tests in the VM test bed's guest (pure cgroup v2, Debian kernel):
# adds the real memcg OOM kill and reclaim test. See bpf/vm/run.sh.
test-bpf-vm:
	bpf/vm/run.sh

bench-bpf:
	@for t in bpftrace bpftool stress-ng; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
	GOVERNOR_BPF_BENCH=1 GOVERNOR_BPF_BENCH_SECONDS=$(BPF_BENCH_SECONDS) \
	  $(GO) test -count=1 -timeout 600s -run 'TestBenchBPF' -v ./bpf

# ---- bench: performance and scale (BENCHMARKS.md) --------------------------
# Go micro-benchmarks (-benchmem) of parsing, the Source, condition
# evaluation, a whole Step, a metrics scrape and a control-socket status
# over 10,000 cgroups, then
# (as root) the real daemon governing 100, 1,000 and 10,000 real containers
# in a node-like tree (every one holds a task, 10 % of them active; see
# BENCHMARKS.md), scraped every 15 s: per-step wall time, CPU (% of a core,
# /proc/PID/stat) and RSS. Fails only on a regression
# beyond BENCH_TOLERANCE against the committed baselines in
# cmd/governor-bench/. BENCH_REF=path/to/older/governor measures that binary
# too, alternately, in the same run; BENCH_RECORD=both measures each with
# its flight recorder on (the default) and off, alternately (off: the
# daemon's --record-size 0). The cgroups are removed on exit, on
# failure and on SIGINT/SIGTERM (and stale ones at the next start).
.PHONY: bench
BENCH_COUNTS    ?= 100,1000,10000
BENCH_SECONDS   ?= 60
BENCH_TOLERANCE ?= 3
BENCH_REF       ?=
BENCH_RECORD    ?= on
bench: build
	$(GO) build -o bin/governor-bench ./cmd/governor-bench
	@set -e; out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s -count 1 ./cgroup ./governor ./governor/metrics ./governor/control >"$$out" 2>&1 || { cat "$$out"; exit 1; }; \
	bin/governor-bench check -baseline cmd/governor-bench/baseline-go.json -tolerance $(BENCH_TOLERANCE) <"$$out"
	@if [ "$$(id -u)" != 0 ]; then echo "bench: not root; skipping the whole-daemon scale runs"; exit 0; fi; \
	bin/governor-bench scale -bin $(BIN) $(if $(BENCH_REF),-ref $(BENCH_REF)) -counts $(BENCH_COUNTS) \
	  -record $(BENCH_RECORD) -duration $(BENCH_SECONDS)s -out bin/bench-scale.json \
	  -baseline cmd/governor-bench/baseline-scale.json -tolerance $(BENCH_TOLERANCE); \
	rc=$$?; bin/governor-bench cleanup; exit $$rc

# ---- image and package: docs/OPERATIONS.md, "Container image", "Debian package"
# `image` writes an OCI archive of the static binary alone (FROM scratch,
# entrypoint /usr/bin/governor, tag $(VERSION)); no base image, nothing
# downloaded. Time stamps are the last commit's, so a commit gives one
# digest. Load or push it with podman load, skopeo copy or ctr import.
.PHONY: image
IMAGE_OUT ?= bin/governor-image-$(VERSION).tar
image: build
	$(GO) run ./cmd/governor-image -binary $(BIN) -version $(VERSION) -arch "$$($(GO) env GOARCH)" \
	  -revision "$$(git rev-parse HEAD 2>/dev/null)" -epoch "$$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
	  -out $(IMAGE_OUT)

# `deb` builds bin/governor_DEBVERSION_ARCH.deb with dpkg-deb: the binary
# at /usr/bin/governor, the unit in /lib/systemd/system (enabled and
# started on install, stopped — which restores every knob — on remove),
# /etc/governor/default.hcl as a conffile, docs and a man page. DEB_VERSION
# and DEB_MAINTAINER override what packaging/deb/build.sh derives.
.PHONY: deb
deb: build
	GOARCH="$$($(GO) env GOARCH)" packaging/deb/build.sh $(BIN) $(VERSION) bin
