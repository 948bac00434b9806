package main

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	gbpf "github.com/governor-dev/governor/bpf"
)

// countLinks counts the raw tracepoint links in the system whose program is
// one of progs (other tests may attach their own meanwhile).
func countLinks(t *testing.T, progs map[ebpf.ProgramID]bool) int {
	t.Helper()
	it := new(link.Iterator)
	defer it.Close()
	n := 0
	for it.Next() {
		if info, err := it.Link.Info(); err == nil && info.Type == link.RawTracepointType && progs[info.Program] {
			n++
		}
		it.Link.Close()
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPin pins the sensors' tracepoints on this kernel, and a made-up one.
func TestPin(t *testing.T) {
	if os.Geteuid() != 0 || gbpf.Supported() != nil {
		t.Skip("needs root and BPF")
	}
	tps := append(gbpf.Tracepoints(), "governor_no_such_tracepoint")
	p, err := pin(tps, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p.pinned != len(tps)-1 || len(p.missing) != 1 || p.missing[0] != "governor_no_such_tracepoint" {
		t.Errorf("pinned %d, missing %v; want %d and the made-up one", p.pinned, p.missing, len(tps)-1)
	}
	ids := map[ebpf.ProgramID]bool{}
	for _, pr := range p.progs {
		info, err := pr.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids[id] = true
	}
	if got := countLinks(t, ids); got != 2*(len(tps)-1) {
		t.Errorf("%d raw tracepoint links, want %d", got, 2*(len(tps)-1))
	}
	p.Close()
	if got := countLinks(t, ids); got != 0 {
		t.Errorf("%d raw tracepoint links left after Close", got)
	}
}
