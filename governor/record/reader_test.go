package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

func readAll(t testing.TB, path string) ([]*Tick, *Reader, error) {
	t.Helper()
	r, err := OpenReader(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []*Tick
	for {
		tk, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		out = append(out, tk)
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := segments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	return segs[0].path
}

func TestRecordingRoundTrip(t *testing.T) {
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(3), 45, Options{BlockTicks: 10})
	ticks, _, err := readAll(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 45 {
		t.Fatalf("%d ticks, want 45", len(ticks))
	}
	for i, tk := range ticks {
		if tk.Seq != uint64(i+1) {
			t.Fatalf("tick %d has seq %d", i, tk.Seq)
		}
		if (tk.Meta != nil) != (i%10 == 0) {
			t.Errorf("tick %d: meta %v, want it on every block's first tick", i, tk.Meta != nil)
		}
		if len(tk.Cgroups) != 8 || tk.Host == nil {
			t.Fatalf("tick %d: %d cgroups, host %v", i, len(tk.Cgroups), tk.Host)
		}
	}
	if m := ticks[0].Meta; m.NumCPU != 4 || !m.Controllers["cpu"] || m.Tick != "1s" {
		t.Errorf("meta %+v", m)
	}
	c := ticks[20].Cgroups[3]
	if c.Path != "batch.slice" || c.ID != 4 || !c.Populated || !hasValue(&c, ticks[0].Meta, "cpu.some.avg10", 30) {
		t.Errorf("tick 21 batch.slice: %+v", c)
	}
}

// A crash mid-block leaves a torn tail: every complete block is read, the
// tail skipped with a warning naming the offset.
func TestTornTailSkipped(t *testing.T) {
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(3), 30, Options{BlockTicks: 10})
	seg := onlySegment(t, dir)
	data, _ := os.ReadFile(seg)
	for _, cut := range []int{1, 20, 40} { // in the data, in the header, just past the header
		if err := os.WriteFile(seg, data[:len(data)-cut], 0o600); err != nil {
			t.Fatal(err)
		}
		ticks, r, err := readAll(t, dir)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if len(ticks) != 20 {
			t.Errorf("cut %d: %d ticks, want the 20 of the two whole blocks", cut, len(ticks))
		}
		if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "offset ") || !strings.Contains(r.Warnings[0], "torn tail") {
			t.Errorf("cut %d: warnings %q", cut, r.Warnings)
		}
	}
}

func TestCorruptBlockNamesOffset(t *testing.T) {
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(3), 30, Options{BlockTicks: 10})
	seg := onlySegment(t, dir)
	data, _ := os.ReadFile(seg)
	// The second block's offset: past the first header and its data.
	second := headerLen + int(le32(data[12:]))
	for _, tc := range []struct {
		name string
		at   int
		want string
		off  int64
	}{
		{"first block data", headerLen + 5, "checksum mismatch", 0},
		{"second block magic", second, "not a recording block", int64(second)},
		{"second block length", second + 13, "out of range", int64(second)},
	} {
		bad := bytes.Clone(data)
		bad[tc.at] ^= 0xff
		if tc.name == "second block length" {
			bad[second+15] = 0x7f // a huge length
		}
		os.WriteFile(seg, bad, 0o600)
		ticks, _, err := readAll(t, dir)
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: error %v, want a CorruptError", tc.name, err)
		}
		if ce.Offset != tc.off || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: %v (offset %d), want %q at offset %d", tc.name, err, ce.Offset, tc.want, tc.off)
		}
		if tc.off > 0 && len(ticks) != 10 {
			t.Errorf("%s: %d ticks before the error, want 10", tc.name, len(ticks))
		}
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// The ring stays within its size, dropping the oldest segments, and what
// is left reads as a contiguous run of the newest ticks.
func TestRingBounded(t *testing.T) {
	dir := t.TempDir()
	const size = 1 << 19 // 1500 ticks take more (delta records: 0.75 MB)
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(50), 1500, Options{Size: size, BlockTicks: 10})
	segs, _ := segments(dir)
	var total int64
	for _, s := range segs {
		total += s.size
	}
	if total > size || len(segs) < 2 || segs[0].n == 1 {
		t.Fatalf("%d segments (first %d), %d bytes: want the oldest dropped and <= %d bytes", len(segs), segs[0].n, total, size)
	}
	ticks, _, err := readAll(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	last := ticks[len(ticks)-1].Seq
	if last != 1500 || ticks[0].Seq == 1 {
		t.Fatalf("ticks %d..%d", ticks[0].Seq, last)
	}
	for i := 1; i < len(ticks); i++ {
		if ticks[i].Seq != ticks[i-1].Seq+1 {
			t.Fatalf("gap: %d then %d", ticks[i-1].Seq, ticks[i].Seq)
		}
	}
	// A new recorder in the same directory starts a new segment.
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(1), 5, Options{Size: size})
	segs2, _ := segments(dir)
	if segs2[len(segs2)-1].n != segs[len(segs)-1].n+1 {
		t.Errorf("restart wrote segment %d after %d", segs2[len(segs2)-1].n, segs[len(segs)-1].n)
	}
}

// The format is readable with common tools: zstd skips the block headers.
func TestZstdCLIReadsSegment(t *testing.T) {
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd not installed (Debian package zstd)")
	}
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(3), 25, Options{BlockTicks: 10})
	out, err := exec.Command(zstd, "-dc", onlySegment(t, dir)).Output()
	if err != nil {
		t.Fatalf("zstd -dc: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tk map[string]any
		if err := json.Unmarshal(sc.Bytes(), &tk); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
	}
	if n != 25 {
		t.Errorf("zstd -dc gave %d JSON lines, want 25", n)
	}
}

// FuzzReader: whatever a segment file holds, the reader returns ticks, a
// CorruptError naming the offset, or EOF — never a panic.
func FuzzReader(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzReader (a recorded segment and its torn
	// half; written from recordRun, kept as files because building them
	// in every fuzz worker made the workers crawl).
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader("fuzz", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF {
			return
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("error is not a CorruptError: %v", err)
		}
		if !strings.Contains(err.Error(), "offset") {
			t.Fatalf("error does not name the offset: %v", err)
		}
	})
}

func hasValue(c *Cgroup, m *Meta, name string, want float64) bool {
	v, ok := c.Signal(m, name)
	return ok && v == want
}

// FuzzDecodeTick: the hand-written line decoder behind Reader.Next never
// panics, and what it accepts from valid JSON it reads as encoding/json
// would (checked for the cgroups' ids and paths).
func FuzzDecodeTick(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeTick (recorded lines) and this one.
	f.Add([]byte(`{"t":"2026-01-01T00:00:00Z","cg":[{"id":1,"p":"a\"b\\u00e9","v":[1,null,"NaN",-2e-3],"x":{"y":[true,false,null]}}]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var tk Tick
		if err := decodeTick(line, &tk); err != nil || !json.Valid(line) {
			return
		}
		var ref struct {
			Cg []struct {
				ID uint64 `json:"id"`
				P  string `json:"p"`
			} `json:"cg"`
		}
		if json.Unmarshal(line, &ref) != nil {
			return
		}
		if len(ref.Cg) != len(tk.Cgroups) {
			t.Fatalf("%d cgroups, encoding/json %d", len(tk.Cgroups), len(ref.Cg))
		}
		for i := range ref.Cg {
			if ref.Cg[i].ID != tk.Cgroups[i].ID || ref.Cg[i].P != tk.Cgroups[i].Path {
				t.Fatalf("cgroup %d: %d %q, encoding/json %d %q", i, tk.Cgroups[i].ID, tk.Cgroups[i].Path, ref.Cg[i].ID, ref.Cg[i].P)
			}
		}
	})
}

// A host with no controllers enabled (empty map) stays that in the
// recording: replaying it as "unknown" (nil) would let the replay act
// with knobs the live loop could not.
func TestMetaKeepsNoControllersApart(t *testing.T) {
	for _, ctl := range []map[string]bool{{}, nil} {
		dir := t.TempDir()
		rec, err := Open(Options{Dir: dir, Size: 1 << 20, Meta: NewMeta(governor.Config{Caps: governor.Capabilities{Controllers: ctl}}, "t")})
		if err != nil {
			t.Fatal(err)
		}
		rec.Tick(&governor.TickRecord{Time: time.Unix(1, 0), Snap: &governor.Snapshot{}})
		rec.Close()
		ticks, _, err := readAll(t, dir)
		if err != nil || len(ticks) != 1 {
			t.Fatal(err, len(ticks))
		}
		if got := ticks[0].Meta.Controllers; (got == nil) != (ctl == nil) {
			t.Errorf("controllers %#v recorded as %#v", ctl, got)
		}
	}
}

// Reading a live daemon's ring: a segment the recorder removes after the
// listing is skipped with a warning, the rest read.
func TestSegmentRemovedWhileReading(t *testing.T) {
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(50), 600, Options{Size: 1 << 20, BlockTicks: 10})
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.files) < 3 {
		t.Fatalf("%d segments, want 3 or more", len(r.files))
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	os.Remove(r.files[1])
	n := 1
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "removed by the recorder") || n < 10 {
		t.Errorf("read %d ticks, warnings %q", n, r.Warnings)
	}
}

// Blocks lists what the headers say: every tick, every byte on disk, in
// order; a torn tail ends the list.
func TestBlocks(t *testing.T) {
	dir := t.TempDir()
	recordRun(t, dir, defaultPolicy(t, nil), newScenario(3), 45, Options{BlockTicks: 10})
	bs, err := Blocks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ticks int
	var bytes int64
	for i, b := range bs {
		ticks += b.Ticks
		bytes += b.Bytes
		if want := 10; i < 4 && b.Ticks != want {
			t.Errorf("block %d: %d ticks, want %d", i, b.Ticks, want)
		}
		if i > 0 && (b.Offset != bs[i-1].Offset+bs[i-1].Bytes || !b.First.After(bs[i-1].First)) {
			t.Errorf("block %d %+v does not follow %+v", i, b, bs[i-1])
		}
	}
	seg := onlySegment(t, dir)
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 5 || ticks != 45 || bytes != fi.Size() {
		t.Fatalf("%d blocks, %d ticks, %d bytes; want 5, 45, %d", len(bs), ticks, bytes, fi.Size())
	}
	if err := os.Truncate(seg, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	if bs, err := Blocks(seg); err != nil || len(bs) != 4 {
		t.Fatalf("torn: %d blocks, %v; want 4", len(bs), err)
	}
}
