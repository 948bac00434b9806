package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	gbpf "github.com/governor-dev/governor/bpf"
)

// pinTracepoints attaches probesPerTracepoint no-op raw tracepoint programs
// to every tracepoint the sensors use, prints a line, and holds them until
// SIGTERM or SIGINT.
//
// Why: attaching the first or second probe to a tracepoint (and detaching
// down to one or none) rewrites kernel text (static key and static call,
// text_poke_bp with int3 and IPIs). Under QEMU's multi-threaded TCG, a vCPU
// that runs the patched site at that moment can spin in the int3 handler for
// ever while the patching vCPU waits for its IPI: the guest locks up (soft
// lockup in smp_call_function_many_cond on one CPU, the other stuck in
// exc_int3 in __schedule). With two probes already on each tracepoint, the
// sensors' attach and detach only swap the probe array and patch nothing.
func pinTracepoints(args []string) error {
	fs := flag.NewFlagSet("pin-tracepoints", flag.ExitOnError)
	n := fs.Int("probes", 2, "no-op probes per tracepoint")
	_ = fs.Parse(args)
	// Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK (64 KiB here).
	_ = rlimit.RemoveMemlock()
	p, err := pin(gbpf.Tracepoints(), *n)
	if err != nil {
		return err
	}
	defer p.Close()
	for _, tp := range p.missing {
		fmt.Fprintf(os.Stderr, "vmload: tracepoint %s: not in this kernel, skipped\n", tp)
	}
	fmt.Printf("pinned %d tracepoints with %d no-op probes each\n", p.pinned, *n)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

type pinned struct {
	links   []link.Link
	progs   []*ebpf.Program
	pinned  int      // tracepoints holding n probes
	missing []string // tracepoints this kernel does not have
}

func (p *pinned) Close() {
	for _, l := range p.links {
		l.Close()
	}
	for _, pr := range p.progs {
		pr.Close()
	}
}

// pin attaches n no-op programs to each of the tracepoints.
func pin(tracepoints []string, n int) (*pinned, error) {
	p := &pinned{}
	for _, tp := range tracepoints {
		ok := true
		for i := 0; i < n && ok; i++ {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
				Name:         "vmtest_pin",
				Type:         ebpf.RawTracepoint,
				License:      "GPL",
				Instructions: asm.Instructions{asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()},
			})
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("loading a no-op program: %w", err)
			}
			p.progs = append(p.progs, prog)
			l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: prog})
			switch {
			case errors.Is(err, os.ErrNotExist):
				p.missing = append(p.missing, tp)
				ok = false
			case err != nil:
				p.Close()
				return nil, fmt.Errorf("attaching to tracepoint %s: %w", tp, err)
			default:
				p.links = append(p.links, l)
			}
		}
		if ok {
			p.pinned++
		}
	}
	return p, nil
}
