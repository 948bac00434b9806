# governor — build, test and generate.
GO      ?= go
BIN     ?= bin/governor
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test test-root check generate lint

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/governor

# Unit tests (fixture trees, fakes) plus, as root, the tests against this
# host's cgroup2 hierarchy, PSI and BPF. Without root those skip.
test:
	$(GO) test -count=1 ./...

# The whole suite, what CI runs (.ci/run): lint, unit and host tests, then
# the scenarios on a real cgroup v2 kernel under QEMU.
check: lint test vm-test

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfel\.go$$'))" || { gofmt -l .; exit 1; }

# Real-kernel tests: a Debian guest under QEMU (TCG), see test/vm/README.md.
# vm-image builds or reuses the cached guest image under build/vm/;
# vm-test also runs the scenarios (SCENARIOS="bed reclaim" picks some).
.PHONY: vm-image vm-test
vm-image:
	test/vm/build-image.sh

vm-test:
	test/vm/run.sh
