package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/zstd"
)

// Defaults of the daemon's flags.
const (
	DefaultDir  = "/var/lib/governor/record"
	DefaultSize = 256 << 20
	// DefaultBlockTicks is how many ticks a block holds: at most this
	// many are lost when the daemon dies (the torn block), and fewer
	// compress worse.
	DefaultBlockTicks = 30
)

const (
	skippableMagic = 0x184D2A5E
	// blockMagic tags the blocks this writer writes: GVR2 blocks may
	// hold delta records (see format.go); GVR1 blocks (before) never do.
	// A reader older than GVR2 refuses GVR2 blocks rather than misread
	// them.
	blockMagic   = "GVR2"
	blockMagicV1 = "GVR1"
	headerLen    = 8 + 24
	segPrefix    = "seg-"
	segSuffix    = ".jsonl.zst"
	// maxFrame bounds a block's compressed and uncompressed size (a
	// reader refuses more: hostile input must not make it allocate
	// without bound).
	maxFrame = 64 << 20
	// lineChunk: a tick's line goes to the encoder in pieces of about
	// this size, so the line buffer stays this small at any cgroup count.
	lineChunk = 64 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Recorder.
type Options struct {
	Dir  string
	Size int64 // bytes on disk at most, all segments together
	// BlockTicks: ticks per block (default DefaultBlockTicks).
	BlockTicks int
	Meta       Meta
	Logger     hclog.Logger
	// fullRecords writes GVR1 blocks, every cgroup in full (tests:
	// what older recorders wrote).
	fullRecords bool
}

// Recorder is a governor.Recorder writing the on-disk ring. Write errors
// are logged (once until writing works again) and drop the block; they
// never stop the loop.
type Recorder struct {
	mu      sync.Mutex
	opt     Options
	log     hclog.Logger
	enc     *zstd.Encoder
	segMax  int64
	seq     int // current segment number
	f       *os.File
	segSize int64
	// buf: the JSON line being built; each tick's goes into enc, which
	// compresses it into out (behind room for the header) as it comes, so
	// the open block is held compressed, not as its JSON lines. open: out
	// holds the open block's frame; raw: its uncompressed bytes so far.
	buf     []byte
	out     bytes.Buffer
	open    bool
	raw     int
	ticks   int
	first   time.Time
	n       uint64 // ticks recorded
	reads   []Read
	effects []Effect
	actions []Action
	mems    []MemRead
	failing bool
	ctlBuf  []Controller
	// prev: each cgroup as last written (gen: in which block), what
	// delta records are against; prevHost the host's.
	prev     map[uint64]*prevSample
	prevHost prevSample
	gen      uint64
	// byPos: prev's entries by position in the last snapshot, which
	// the next one mostly repeats: a map lookup only where it did not.
	byPos []*prevSample
}

type prevSample struct {
	gen uint64
	s   governor.Sample
}

// Open prepares a recorder in opt.Dir (created 0700). It writes nothing
// until the first tick, and never appends to an earlier run's segments.
func Open(opt Options) (*Recorder, error) {
	if opt.Size <= 0 {
		return nil, errors.New("record: size must be positive")
	}
	if opt.BlockTicks <= 0 {
		opt.BlockTicks = DefaultBlockTicks
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	opt.Meta.Signals = signalNames() // what appendCgroup writes
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	segs, err := segments(opt.Dir)
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	r := &Recorder{opt: opt, log: opt.Logger, enc: enc, segMax: max(opt.Size/16, 64<<10), prev: map[uint64]*prevSample{}}
	if len(segs) > 0 {
		r.seq = segs[len(segs)-1].n
	}
	return r, nil
}

type segment struct {
	n    int
	path string
	size int64
}

// segments lists a directory's segment files, oldest first.
func segments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var out []segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix))
		if err != nil || n <= 0 {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		out = append(out, segment{n: n, path: filepath.Join(dir, name), size: size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out, nil
}

func segName(n int) string { return fmt.Sprintf("%s%08d%s", segPrefix, n, segSuffix) }

// Wrap returns an Actuator that passes every call to act and records knob
// reads and effects with the tick they belong to.
func (r *Recorder) Wrap(act governor.Actuator) governor.Actuator {
	return &recordingActuator{act: act, r: r}
}

// Action implements governor.Recorder.
func (r *Recorder) Action(a governor.Action) {
	r.mu.Lock()
	r.actions = append(r.actions, FromAction(a))
	r.mu.Unlock()
}

// Tick implements governor.Recorder.
func (r *Recorder) Tick(t *governor.TickRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	b := r.buf
	if r.ticks == 0 {
		r.first = t.Time
		r.newBlock()
	}
	b = append(b, `{"t":`...)
	b = t.Time.UTC().AppendFormat(append(b, '"'), time.RFC3339Nano)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, r.n, 10)
	if r.ticks == 0 {
		m, _ := json.Marshal(r.opt.Meta)
		b = append(append(b, `,"meta":`...), m...)
	}
	if h := t.Snap.Host; h != nil {
		b = r.appendSample(append(b, `,"host":`...), h, &r.prevHost)
	}
	b = append(b, `,"cg":[`...)
	for i, c := range t.Snap.Cgroups {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.appendSample(b, c, r.prevAt(i, c.ID))
		if len(b) >= lineChunk {
			r.emit(b)
			b = r.buf
		}
	}
	b = append(b, ']')
	r.ctlBuf = r.ctlBuf[:0]
	for _, c := range t.Controllers {
		rc := Controller{Name: c.Name, Active: c.Active, Disabled: c.Disabled}
		if c.Active {
			rc.Because = c.Because
		}
		if r.ticks == 0 {
			rc.Kind, rc.Target = c.Kind, c.Target
		}
		r.ctlBuf = append(r.ctlBuf, rc)
	}
	b = appendJSON(b, "ctl", r.ctlBuf)
	b = appendJSON(b, "rd", r.reads)
	b = appendJSON(b, "fx", r.effects)
	b = appendJSON(b, "act", r.actions)
	b = appendJSON(b, "mem", r.mems)
	b = append(b, "}\n"...)
	r.emit(b)
	r.reads, r.effects, r.actions, r.mems = r.reads[:0], r.effects[:0], r.actions[:0], r.mems[:0]
	r.ticks++
	if r.ticks >= r.opt.BlockTicks || r.raw >= maxFrame/2 {
		r.flush()
	}
}

// emit compresses b, a tick's line or a piece of it, into the open
// block's frame (starting the frame if none is open) and keeps b's array
// for what follows.
func (r *Recorder) emit(b []byte) {
	if !r.open {
		var room [headerLen]byte
		r.out.Reset()
		r.out.Write(room[:])
		r.enc.Reset(&r.out)
		r.open, r.raw = true, 0
	}
	// A bytes.Buffer takes every write: the encoder cannot fail here.
	r.enc.Write(b)
	r.raw += len(b)
	r.buf = b[:0]
}

// prevAt is prev's entry for cgroup id, at position i of the snapshot
// (made if there is none).
func (r *Recorder) prevAt(i int, id governor.CgroupID) *prevSample {
	if i < len(r.byPos) {
		if p := r.byPos[i]; p != nil && p.s.ID == id {
			return p
		}
	} else {
		r.byPos = append(r.byPos, make([]*prevSample, i+1-len(r.byPos))...)
	}
	p := r.prev[uint64(id)]
	if p == nil {
		p = &prevSample{s: governor.Sample{Ref: governor.Ref{ID: id}}}
		r.prev[uint64(id)] = p
	}
	r.byPos[i] = p
	return p
}

// newBlock starts a block's delta state: the first record of each
// cgroup in a block is in full. Cgroups not seen in the last block are
// forgotten.
func (r *Recorder) newBlock() {
	for id, p := range r.prev {
		if p.gen != r.gen {
			delete(r.prev, id)
		}
	}
	clear(r.byPos) // it may hold what was just forgotten
	r.gen++
}

// appendSample writes s in full if p (what was last written for it) is
// from an earlier block, else as a delta against p; and keeps s in p.
func (r *Recorder) appendSample(b []byte, s *governor.Sample, p *prevSample) []byte {
	if p.gen != r.gen || r.opt.fullRecords || governor.NumSignals > maxDeltaSignals {
		b = appendCgroup(b, s)
	} else {
		b = appendDelta(b, s, &p.s)
	}
	p.gen = r.gen
	p.s.Ref, p.s.Populated, p.s.Has, p.s.Values = s.Ref, s.Populated, s.Has, s.Values
	return b
}

// appendDelta writes s as a delta record against prev: "m" has a bit
// for each position whose value changed (a change of presence too), "v"
// the new values of those positions in order (null: no longer
// measured); "p" and "pop" only when they changed.
func appendDelta(b []byte, s, prev *governor.Sample) []byte {
	// The signals that came or went, then those present in both whose
	// value changed (bit for bit: -0 and NaN are changes too). appendSample
	// writes full records when the signals do not fit one word.
	mask := s.Has[0] ^ prev.Has[0]
	for m := s.Has[0] & prev.Has[0]; m != 0; m &= m - 1 {
		sig := bits.TrailingZeros64(m)
		if math.Float64bits(s.Values[sig]) != math.Float64bits(prev.Values[sig]) {
			mask |= 1 << sig
		}
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(s.ID), 10)
	b = append(b, `,"m":`...)
	b = strconv.AppendUint(b, mask, 10)
	if s.Path != prev.Path {
		b = appendString(append(b, `,"p":`...), s.Path)
	}
	if s.Populated != prev.Populated {
		b = strconv.AppendBool(append(b, `,"pop":`...), s.Populated)
	}
	if mask != 0 {
		b = append(b, `,"v":[`...)
		first := true
		for m := mask; m != 0; m &= m - 1 {
			if !first {
				b = append(b, ',')
			}
			first = false
			sig := governor.Signal(bits.TrailingZeros64(m))
			if v, ok := s.Get(sig); ok {
				b = appendNum(b, v)
			} else {
				b = append(b, "null"...)
			}
		}
		b = append(b, ']')
	}
	return append(appendBy(b, s), '}')
}

func appendJSON[T any](b []byte, key string, v []T) []byte {
	if len(v) == 0 {
		return b
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return append(b, j...)
}

// Flush writes the open block now.
func (r *Recorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flush()
}

func (r *Recorder) flush() {
	if r.ticks == 0 {
		return
	}
	ticks, first := r.ticks, r.first
	r.ticks = 0
	// The frame follows room for the header: one buffer, one write.
	r.enc.Close()
	r.open = false
	block := r.out.Bytes()
	hdr, data := block[:headerLen], block[headerLen:]
	binary.LittleEndian.PutUint32(hdr[0:], skippableMagic)
	binary.LittleEndian.PutUint32(hdr[4:], 24)
	if r.opt.fullRecords {
		copy(hdr[8:], blockMagicV1)
	} else {
		copy(hdr[8:], blockMagic)
	}
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[16:], crc32.Checksum(data, crcTable))
	binary.LittleEndian.PutUint32(hdr[20:], uint32(ticks))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(first.UnixNano()))
	if err := r.write(block); err != nil {
		if !r.failing {
			r.log.Warn("flight recorder cannot write; dropping its data until writing works again", "dir", r.opt.Dir, "error", err)
			r.failing = true
		}
		return
	}
	if r.failing {
		r.log.Info("flight recorder writes again", "dir", r.opt.Dir)
		r.failing = false
	}
}

// write appends one block (header and frame) to the current segment, starting a new segment
// (and removing the oldest ones beyond the size) when it is full.
func (r *Recorder) write(block []byte) error {
	n := int64(len(block))
	if r.f != nil && r.segSize+n > r.segMax {
		r.f.Close()
		r.f = nil
	}
	if r.f == nil {
		if err := r.trim(n); err != nil {
			return err
		}
		r.seq++
		f, err := os.OpenFile(filepath.Join(r.opt.Dir, segName(r.seq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		r.f, r.segSize = f, 0
	}
	// One write: a crash tears at most this block.
	w, err := r.f.Write(block)
	r.segSize += int64(w)
	if err != nil {
		// Leave a torn block behind no further blocks: start afresh.
		r.f.Close()
		r.f = nil
	}
	return err
}

// trim removes the oldest segments until need more bytes fit in the size.
func (r *Recorder) trim(need int64) error {
	segs, err := segments(r.opt.Dir)
	if err != nil {
		return err
	}
	var total int64
	for _, s := range segs {
		total += s.size
	}
	for len(segs) > 0 && total+max(need, r.segMax) > r.opt.Size {
		if err := os.Remove(segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		total -= segs[0].size
		segs = segs[1:]
	}
	return nil
}

// Close writes the open block (with the actions since the last tick, if
// any: the restores of shutdown) and closes the segment.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.actions) > 0 || len(r.effects) > 0 {
		b := append(r.buf, `{"t":`...)
		b = time.Now().UTC().AppendFormat(append(b, '"'), time.RFC3339Nano)
		r.n++
		b = strconv.AppendUint(append(b, `","seq":`...), r.n, 10)
		if r.ticks == 0 {
			r.first = time.Now()
			m, _ := json.Marshal(r.opt.Meta)
			b = append(append(b, `,"meta":`...), m...)
		}
		b = append(b, `,"cg":[]`...)
		b = appendJSON(b, "rd", r.reads)
		b = appendJSON(b, "fx", r.effects)
		b = appendJSON(b, "act", r.actions)
		r.emit(append(b, "}\n"...))
		r.ticks++
	}
	r.flush()
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// errKind classifies an Actuator error.
func errKind(err error) (kind, msg string) {
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, governor.ErrGone):
		kind = ErrKindGone
	case errors.Is(err, governor.ErrUnsupported):
		kind = ErrKindUnsupported
	case errors.Is(err, governor.ErrInProgress):
		kind = ErrKindInProgress
	case errors.Is(err, governor.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		kind = ErrKindTimeout
	default:
		kind = ErrKindOther
	}
	return kind, err.Error()
}

// recordingActuator records what passes through it.
type recordingActuator struct {
	act governor.Actuator
	r   *Recorder
}

func (a *recordingActuator) read(cg governor.Ref, k governor.Knob, s governor.Setting, err error) {
	ek, msg := errKind(err)
	a.r.mu.Lock()
	a.r.reads = append(a.r.reads, Read{ID: uint64(cg.ID), Knob: k.String(), Value: s.Value, Raw: s.Raw, ErrKind: ek, Err: msg})
	a.r.mu.Unlock()
}

func (a *recordingActuator) effect(cg governor.Ref, op, knob string, v int64, err error) {
	ek, msg := errKind(err)
	a.r.mu.Lock()
	a.r.effects = append(a.r.effects, Effect{ID: uint64(cg.ID), Op: op, Knob: knob, Value: v, ErrKind: ek, Err: msg})
	a.r.mu.Unlock()
}

func (a *recordingActuator) Read(ctx context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	s, err := a.act.Read(ctx, cg, k)
	a.read(cg, k, s, err)
	return s, err
}

func (a *recordingActuator) Write(ctx context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	err := a.act.Write(ctx, cg, k, v)
	a.effect(cg, "write", k.String(), v, err)
	return err
}

func (a *recordingActuator) Restore(ctx context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	err := a.act.Restore(ctx, cg, k, s)
	a.effect(cg, "restore", k.String(), s.Value, err)
	return err
}

func (a *recordingActuator) Reclaim(ctx context.Context, cg governor.Ref, bytes int64) error {
	err := a.act.Reclaim(ctx, cg, bytes)
	a.effect(cg, "reclaim", "memory.reclaim", bytes, err)
	return err
}

func (a *recordingActuator) Freeze(ctx context.Context, cg governor.Ref, frozen bool) error {
	err := a.act.Freeze(ctx, cg, frozen)
	op := "freeze"
	if !frozen {
		op = "thaw"
	}
	a.effect(cg, op, "cgroup.freeze", 0, err)
	return err
}

func (a *recordingActuator) Kill(ctx context.Context, cg governor.Ref) error {
	err := a.act.Kill(ctx, cg)
	a.effect(cg, "kill", "cgroup.kill", 0, err)
	return err
}

// FreezeState forwards to the wrapped actuator's (governor.FreezeReader),
// recorded as a read of "cgroup.freeze".
func (a *recordingActuator) FreezeState(ctx context.Context, cg governor.Ref) (bool, error) {
	fr, ok := a.act.(governor.FreezeReader)
	if !ok {
		return false, fmt.Errorf("cgroup.freeze: %w", governor.ErrUnsupported)
	}
	on, err := fr.FreezeState(ctx, cg)
	ek, msg := errKind(err)
	v := int64(0)
	if on {
		v = 1
	}
	a.r.mu.Lock()
	a.r.reads = append(a.r.reads, Read{ID: uint64(cg.ID), Knob: "cgroup.freeze", Value: v, ErrKind: ek, Err: msg})
	a.r.mu.Unlock()
	return on, err
}

// ReadMemory forwards governor.MemoryReader (without it the reclaim
// controller behind a recorder, the default, measured nothing and its
// step never ramped) and records each reading: a replay serves them back
// in order, so its reclaim measures and ramps as the live one did.
func (a *recordingActuator) ReadMemory(ctx context.Context, cg governor.Ref) (governor.MemoryState, error) {
	mr, ok := a.act.(governor.MemoryReader)
	if !ok {
		return governor.MemoryState{}, fmt.Errorf("memory accounting: %w", governor.ErrUnsupported)
	}
	m, err := mr.ReadMemory(ctx, cg)
	a.r.mu.Lock()
	a.r.mems = append(a.r.mems, memRead(uint64(cg.ID), m, err))
	a.r.mu.Unlock()
	return m, err
}

// EnablesController forwards governor.ControllerEnabler.
func (a *recordingActuator) EnablesController(ctl string) bool {
	e, ok := a.act.(governor.ControllerEnabler)
	return ok && e.EnablesController(ctl)
}

// Unwrap returns the wrapped actuator.
func (a *recordingActuator) Unwrap() governor.Actuator { return a.act }

// NewMeta describes the host as cfg (the live loop's configuration) sees
// it: what a replay needs to decide as the live loop did.
func NewMeta(cfg governor.Config, version string) Meta {
	m := Meta{Version: version, Root: cfg.Caps.Root, Controllers: cfg.Caps.Controllers, Reclaim: cfg.Caps.Reclaim,
		Freeze: cfg.Caps.Freeze, Kill: cfg.Caps.Kill, NoCPUIdle: cfg.Caps.NoCPUIdle, SelfPath: cfg.SelfPath, AllowSystemd: cfg.AllowSystemd,
		NumCPU: cfg.NumCPU, DryRun: cfg.DryRun}
	if m.NumCPU <= 0 {
		m.NumCPU = runtime.NumCPU()
	}
	if cfg.Policy != nil {
		m.Tick = cfg.Policy.Tick.String()
	}
	if e, ok := cfg.Actuator.(governor.ControllerEnabler); ok {
		for _, ctl := range []string{"cpu", "cpuset", "io", "memory", "pids", "cpu.idle"} {
			if e.EnablesController(ctl) {
				m.Enables = append(m.Enables, ctl)
			}
		}
	}
	return m
}
