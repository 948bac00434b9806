package cgroup

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// TestSourceSnapshotClock: rates are over the snapshot's time (the loop's
// clock), not the Source's own: with the Source's clock frozen, two
// snapshots 2 s apart give a cgroup that ran 1 s of CPU a usage of 0.5.
func TestSourceSnapshotClock(t *testing.T) {
	root, proc := sourceFixture(t)
	frozen := &fakeClock{t: time.Unix(5000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	src.now = frozen.now
	var snap governor.Snapshot
	at := time.Unix(1000, 0)
	snap.Reset(at)
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "a")
	writeFixture(t, filepath.Join(dir, "cpu.stat"), "usage_usec 2000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 1000\n")
	writeFixture(t, filepath.Join(dir, "cpu.pressure"), psiFile(1_500_000, 500_000))
	snap.Reset(at.Add(2 * time.Second))
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	a := snap.Lookup(inode(t, dir))
	wantSig(t, a, governor.CPUUsage, 0.5)
	wantSig(t, a, governor.CPUSomeStall, 25)
}
