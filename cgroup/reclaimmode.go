package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// File pages before anonymous ones. memory.reclaim takes "swappiness=N"
// after the byte count since Linux 6.11; with swappiness=0 a cgroup's
// reclaim scans only page cache. Where swap is slow (a disk or a swap file,
// not zram, and zswap off) swapping out anonymous memory costs far more than
// dropping clean page cache, so while the cgroup has page cache to give the
// actuator asks for file pages only; once too little is left it writes the
// plain byte count and lets the kernel balance as usual. Without any swap
// the kernel never scans anonymous memory for a cgroup's reclaim, so there
// is nothing to choose. The kernel's support is probed by writing: the first
// file-first write that fails with EINVAL (older kernels reject anything
// after the byte count) marks it absent, is logged once and is retried
// without the argument.

// DefaultZswapEnabled is where the kernel says whether zswap is on.
const DefaultZswapEnabled = "/sys/module/zswap/parameters/enabled"

// Swappiness support of memory.reclaim, as probed (Actuator.swappiness).
const (
	swappinessUnknown int32 = iota
	swappinessYes
	swappinessNo
)

// SwapKind classifies the host's swap for reclaim.
type SwapKind int

const (
	SwapNone SwapKind = iota // no swap device
	SwapFast                 // every device is zram, or zswap is on
	SwapSlow                 // a disk partition or a swap file
)

func (k SwapKind) String() string {
	switch k {
	case SwapNone:
		return "none"
	case SwapFast:
		return "fast"
	}
	return "slow"
}

// ClassifySwaps tells from /proc/swaps (and whether zswap is on) what kind
// of swap the host has. zram devices are compressed RAM; zswap puts a
// compressed RAM cache in front of any device.
func ClassifySwaps(procSwaps []byte, zswap bool) SwapKind {
	kind := SwapNone
	sc := bufio.NewScanner(bytes.NewReader(procSwaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "Filename" {
			continue
		}
		if strings.HasPrefix(f[0], "/dev/zram") || zswap {
			if kind == SwapNone {
				kind = SwapFast
			}
			continue
		}
		kind = SwapSlow
	}
	return kind
}

// hostSwap reads the host's swap kind; an unreadable /proc/swaps counts as
// none (the kernel then has nothing to choose between either).
func (a *Actuator) hostSwap() SwapKind {
	p := a.ProcSwaps
	if p == "" {
		p = DefaultProcSwaps
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return SwapNone
	}
	z := a.ZswapEnabled
	if z == "" {
		z = DefaultZswapEnabled
	}
	zb, _ := os.ReadFile(z)
	return ClassifySwaps(b, strings.TrimSpace(string(zb)) == "Y")
}

// fileFirst says whether a reclaim of bytes from cg should ask for page
// cache only: the kernel is not known to lack swappiness=, swap is slow,
// and the cgroup has at least bytes of page cache (shmem aside: it can
// only go to swap).
func (a *Actuator) fileFirst(ctx context.Context, cg governor.Ref, bytes int64) bool {
	if a.swappiness.Load() == swappinessNo || a.hostSwap() != SwapSlow {
		return false
	}
	m, err := a.ReadMemory(ctx, cg)
	return err == nil && m.FileReclaimable() >= bytes
}

// reclaimWrite writes one memory.reclaim request, file pages only when
// fileFirst says so, probing the kernel's support on the first such write.
func (a *Actuator) reclaimWrite(ctx context.Context, cg governor.Ref, bytes int64) error {
	n := strconv.FormatInt(bytes, 10)
	if !a.fileFirst(ctx, cg, bytes) {
		return a.writeFile(ctx, cg, "memory.reclaim", n, false)
	}
	err := a.writeFile(ctx, cg, "memory.reclaim", n+" swappiness=0", false)
	switch {
	case err == nil || errors.Is(err, unix.EAGAIN):
		a.swappiness.CompareAndSwap(swappinessUnknown, swappinessYes)
		return err
	case errors.Is(err, unix.EINVAL) && a.swappiness.CompareAndSwap(swappinessUnknown, swappinessNo):
		a.log.Warn("memory.reclaim takes no swappiness= on this kernel (Linux 6.11+): reclaim cannot prefer page cache over anonymous memory, and with this host's slow swap the kernel may swap out anonymous pages first",
			"cgroup", a.path(cg, "memory.reclaim"))
		return a.writeFile(ctx, cg, "memory.reclaim", n, false)
	}
	return err
}
