package record

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// churnTicks are snapshots that exercise delta records: cgroups coming
// and going, signals appearing and disappearing, paths and populated
// changing, NaN, infinities and -0, and values that repeat.
func churnTicks(n int) []governor.Snapshot {
	r := rand.New(rand.NewSource(7))
	vals := []float64{0, math.Copysign(0, -1), 1, 0.25, math.NaN(), math.Inf(1), math.Inf(-1), 4096 * 12345, 1.0 / 3}
	cgs := make([]governor.Sample, 12)
	for i := range cgs {
		cgs[i] = governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(10 + i), Path: fmt.Sprintf("a.slice/c%d", i)}}
	}
	var host governor.Sample
	change := func(s *governor.Sample) {
		for k := r.Intn(6); k > 0; k-- {
			sig := governor.Signal(r.Intn(int(governor.NumSignals)))
			if r.Intn(4) == 0 {
				s.Has[sig/64] &^= 1 << (sig % 64)
				s.Values[sig] = r.Float64() // stale, not to be recorded
			} else {
				s.Set(sig, vals[r.Intn(len(vals))])
			}
		}
		if r.Intn(15) == 0 {
			s.Populated = !s.Populated
		}
		if r.Intn(40) == 0 {
			s.Path += "x"
		}
	}
	var out []governor.Snapshot
	for t := 0; t < n; t++ {
		var snap governor.Snapshot
		if r.Intn(5) > 0 {
			change(&host)
			h := host
			snap.Host = &h
		}
		for i := range cgs {
			change(&cgs[i])
			if r.Intn(5) > 0 {
				c := cgs[i]
				snap.Cgroups = append(snap.Cgroups, &c)
			}
		}
		if t%9 == 0 && len(snap.Cgroups) > 0 { // the same id twice in a tick
			c := *snap.Cgroups[0]
			change(&c)
			snap.Cgroups = append(snap.Cgroups, &c)
		}
		out = append(out, snap)
	}
	return out
}

// Delta records (GVR2) read back as the same ticks as full records
// (GVR1, what earlier recorders wrote), bit for bit.
func TestDeltaReadsAsFull(t *testing.T) {
	snaps := churnTicks(500)
	read := func(full bool) []*Tick {
		dir := t.TempDir()
		rec, err := Open(Options{Dir: dir, Size: 64 << 20, BlockTicks: 17, fullRecords: full})
		if err != nil {
			t.Fatal(err)
		}
		for i := range snaps {
			rec.Tick(&governor.TickRecord{Time: time.Unix(int64(1000+i), 0), Snap: &snaps[i]})
		}
		rec.Close()
		ticks, _, err := readAll(t, dir)
		if err != nil || len(ticks) != len(snaps) {
			t.Fatalf("full=%v: %d ticks, %v", full, len(ticks), err)
		}
		return ticks
	}
	full, delta := read(true), read(false)
	same := func(a, b *Cgroup) bool {
		if a.ID != b.ID || a.Path != b.Path || a.Populated != b.Populated || len(a.Values) != len(b.Values) {
			return false
		}
		for i := range a.Values {
			if a.Values[i].Set != b.Values[i].Set || math.Float64bits(a.Values[i].V) != math.Float64bits(b.Values[i].V) {
				return false
			}
		}
		return true
	}
	for i := range full {
		f, d := full[i], delta[i]
		if (f.Host == nil) != (d.Host == nil) || f.Host != nil && !same(f.Host, d.Host) {
			t.Fatalf("tick %d: host %+v, delta-recorded %+v", i, f.Host, d.Host)
		}
		if len(f.Cgroups) != len(d.Cgroups) {
			t.Fatalf("tick %d: %d cgroups, delta-recorded %d", i, len(f.Cgroups), len(d.Cgroups))
		}
		for j := range f.Cgroups {
			if !same(&f.Cgroups[j], &d.Cgroups[j]) {
				t.Fatalf("tick %d cgroup %d: %+v, delta-recorded %+v", i, j, f.Cgroups[j], d.Cgroups[j])
			}
		}
		f.Cgroups, d.Cgroups, f.Host, d.Host = nil, nil, nil, nil
		if !reflect.DeepEqual(f, d) {
			t.Fatalf("tick %d: %+v, delta-recorded %+v", i, f, d)
		}
	}
}

// A delta record with nothing to be a delta against, or whose mask and
// values disagree, is a clear error; so is one in a line read on its own.
func TestDeltaErrors(t *testing.T) {
	for _, line := range []string{
		`{"t":"2026-01-01T00:00:00Z","cg":[{"id":1,"m":0}]}`,
		`{"t":"2026-01-01T00:00:00Z","cg":[{"id":1,"p":"a"},{"id":1,"m":3,"v":[1]}]}`,
		`{"t":"2026-01-01T00:00:00Z","host":{"id":1,"m":1,"v":[1]}}`,
	} {
		var tk Tick
		var st blockState
		st.reset()
		if err := decodeTickIn([]byte(line), &tk, &st); err == nil {
			t.Errorf("%s: no error", line)
		}
	}
	var tk Tick
	var st blockState
	st.reset()
	if err := decodeTickIn([]byte(`{"t":"2026-01-01T00:00:00Z","cg":[{"id":1,"p":"a","pop":true,"v":[1,2,3]},{"id":1,"m":5,"pop":false,"v":[null,7]}]}`), &tk, &st); err != nil {
		t.Fatal(err)
	}
	if err := decodeTick([]byte(`{"t":"2026-01-01T00:00:00Z","cg":[{"id":1,"p":"a"},{"id":1,"m":0}]}`), new(Tick)); err == nil {
		t.Error("decodeTick took a delta record")
	}
	if c := tk.Cgroups[1]; c.Path != "a" || c.Populated || !reflect.DeepEqual(c.Values, []Value{{}, {2, true}, {7, true}}) {
		t.Errorf("delta applied as %+v", c)
	}
}

// A recording in full records (GVR1, as recorders before delta records
// wrote) replays to the same actions as the live run, as a delta one
// does (TestReplaySamePolicyReproducesLive).
func TestReplayFullRecords(t *testing.T) {
	dir := t.TempDir()
	live := recordRun(t, dir, defaultPolicy(t, nil), newScenario(20), 120, Options{fullRecords: true})
	res, err := Replay(context.Background(), dir, ReplayOptions{Policy: defaultPolicy(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if want, got := strings.Join(actionLines(live), "\n"), strings.Join(actionLines(res.Actions), "\n"); res.Ticks != 120 || len(live) == 0 || want != got {
		t.Fatalf("%d ticks; replay differs from live\nlive:\n%s\nreplay:\n%s", res.Ticks, want, got)
	}
	data, err := os.ReadFile(onlySegment(t, dir))
	if err != nil || !bytes.Contains(data[:headerLen], []byte("GVR1")) {
		t.Fatalf("not a GVR1 recording: %v", err)
	}
}

// The open block is held compressed as its ticks come, not as their JSON
// lines: at 10,000 containers a block's 30 lines were ~30 MiB held (and
// up to twice that while the buffer grew) until the block was written.
// What the recorder holds for an open block of 2,000 cgroups (one in ten
// busy, the rest idle, as BenchmarkHeap15k) is a fraction of its
// uncompressed size, and the block reads back whole.
func TestOpenBlockHeldCompressed(t *testing.T) {
	src := newNoisySource(2000, 10)
	src.serveIdle = true
	dir := t.TempDir()
	rec, err := Open(Options{Dir: dir, Size: 64 << 20, BlockTicks: 30})
	if err != nil {
		t.Fatal(err)
	}
	var line int
	for i := 0; i < 29; i++ {
		var snap governor.Snapshot
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		rec.Tick(&governor.TickRecord{Time: time.Unix(int64(1000+i), 0), Snap: &snap})
		line = max(line, cap(rec.buf))
	}
	if rec.ticks != 29 || rec.raw < 1<<20 {
		t.Fatalf("open block: %d ticks, %d bytes uncompressed; want 29 ticks, over 1 MiB", rec.ticks, rec.raw)
	}
	if held := rec.out.Cap() + cap(rec.buf); held > rec.raw*2/3 {
		t.Fatalf("open block of %d bytes: %d bytes held (compressed %d, line buffer %d)", rec.raw, held, rec.out.Len(), cap(rec.buf))
	}
	if line > 2*lineChunk {
		t.Fatalf("line buffer of %d bytes for a block of %d: want a piece of a line (%d bytes)", line, rec.raw, lineChunk)
	}
	rec.Close()
	ticks, _, err := readAll(t, dir)
	if err != nil || len(ticks) != 29 || len(ticks[28].Cgroups) != 2000 {
		t.Fatalf("read back: %d ticks, %v", len(ticks), err)
	}
}
