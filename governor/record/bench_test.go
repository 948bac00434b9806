package record

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// noisySource serves n cgroups. One in every busyEvery is busy: its
// signals take new random values at every tick, with the entropy of a
// real host's (PSI averages with two decimals changing every 2 s, stall
// shares and CPU usage from microsecond counters, memory in pages,
// run-queue quantiles from power-of-two histogram buckets). The others
// idle as most of a node's cgroups do: no pressure, memory moving by a
// page now and then, a little CPU.
type noisySource struct {
	rng       *rand.Rand
	tick      int
	host      governor.Sample
	cgs       []governor.Sample
	busyEvery int
	// serveIdle: the idle cgroups are in the snapshot too (as a real
	// host's are); without it only the busy ones are.
	serveIdle bool
}

func newNoisySource(n, busyEvery int) *noisySource {
	s := &noisySource{rng: rand.New(rand.NewSource(1)), busyEvery: busyEvery}
	add := func(id int, path string) {
		s.cgs = append(s.cgs, governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(id), Path: path}, Populated: true})
	}
	add(1, "")
	add(2, "system.slice")
	add(3, "batch.slice")
	for i := 0; i < n-3; i++ {
		if i%2 == 0 {
			add(100+i, fmt.Sprintf("system.slice/svc-%04d.service", i))
		} else {
			add(100+i, fmt.Sprintf("batch.slice/job-%04d.scope", i))
		}
	}
	return s
}

func (s *noisySource) Name() string { return "noisy" }

func (s *noisySource) Sample(_ context.Context, snap *governor.Snapshot) error {
	s.tick++
	r := s.rng
	pct := func(hi float64) float64 { return float64(int(r.Float64()*hi*100)) / 100 }
	fill := func(c *governor.Sample) {
		for res := 0; res < 3; res++ {
			for _, full := range []bool{false, true} {
				if s.tick%2 == 1 || !c.Has.Has(governor.PSISignal(res, full, 0)) {
					for f := 0; f < 3; f++ {
						c.Set(governor.PSISignal(res, full, f), pct(5))
					}
				}
				c.Set(governor.PSISignal(res, full, 3), float64(r.Intn(50000))/1e6*100)
			}
		}
		page := float64(4096)
		c.Set(governor.MemoryCurrent, page*float64(100000+r.Intn(5000)))
		c.Set(governor.MemoryAnon, page*float64(60000+r.Intn(3000)))
		c.Set(governor.MemoryFile, page*float64(40000+r.Intn(2000)))
		c.Set(governor.MemorySwap, 0)
		c.Set(governor.MemoryHighRatio, 0)
		c.Set(governor.MemoryEventsHigh, 0)
		c.Set(governor.MemoryEventsMax, 0)
		c.Set(governor.CPUUsage, float64(r.Intn(2000000))/1e6)
		c.Set(governor.CPUThrottled, 0)
		c.Set(governor.IOReadBytes, float64(r.Intn(3)*4096*r.Intn(100)))
		c.Set(governor.IOWriteBytes, float64(r.Intn(3)*4096*r.Intn(100)))
		c.Set(governor.RunqP50, float64(uint64(1)<<r.Intn(8))/1e6)
		c.Set(governor.RunqP90, float64(uint64(1)<<(4+r.Intn(8)))/1e6)
		c.Set(governor.RunqP99, float64(uint64(1)<<(8+r.Intn(8)))/1e6)
	}
	idle := func(c *governor.Sample) {
		for sig := governor.Signal(0); sig <= governor.IOFullStall; sig++ {
			c.Set(sig, 0)
		}
		if !c.Has.Has(governor.MemoryCurrent) || r.Intn(20) == 0 {
			c.Set(governor.MemoryCurrent, 4096*float64(2000+r.Intn(50)))
			c.Set(governor.MemoryAnon, 4096*float64(1500+r.Intn(50)))
			c.Set(governor.MemoryFile, 4096*float64(500+r.Intn(50)))
		}
		c.Set(governor.CPUUsage, float64(r.Intn(5000))/1e6)
	}
	fill(&s.host)
	snap.Host = &s.host
	for i := range s.cgs {
		if i%s.busyEvery != 0 {
			idle(&s.cgs[i])
			if s.serveIdle {
				snap.Cgroups = append(snap.Cgroups, &s.cgs[i])
			}
			continue
		}
		fill(&s.cgs[i])
		snap.Cgroups = append(snap.Cgroups, &s.cgs[i])
	}
	return nil
}

func benchLoop(b *testing.B, n, busyEvery int, dir string) (*governor.Loop, *clock, *Recorder) {
	return benchLoopSrc(b, newNoisySource(n, busyEvery), dir)
}

func benchLoopSrc(b *testing.B, src governor.Source, dir string) (*governor.Loop, *clock, *Recorder) {
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	act := &memKnobs{vals: map[memKey]int64{}}
	cfg := governor.Config{Policy: defaultPolicy(b, nil), Sources: []governor.Source{src}, Actuator: act, Clock: clk, Caps: testCaps, NumCPU: 4}
	var rec *Recorder
	if dir != "" {
		var err error
		rec, err = Open(Options{Dir: dir, Size: DefaultSize, Meta: NewMeta(cfg, "bench")})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Recorder = rec
		cfg.Actuator = rec.Wrap(act)
	}
	l, err := governor.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l, clk, rec
}

// BenchmarkStep is a whole Step over n cgroups with and without the
// flight recorder, so one run shows what recording adds.
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("cgroups=%d/record=%v", n, on), func(b *testing.B) {
				dir := ""
				if on {
					dir = b.TempDir()
				}
				l, clk, rec := benchLoop(b, n, 5, dir)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					clk.t = clk.t.Add(time.Second)
					if err := l.Step(ctx); err != nil {
						b.Fatal(err)
					}
				}
				if rec != nil {
					rec.Close()
				}
			})
		}
	}
}

// BenchmarkRecordSize records an hour of 100 cgroups at a 1 s tick and
// reports the bytes per tick on disk and how many hours fit in the
// default 256 MiB: with one cgroup in five busy (a batch node), and with
// every cgroup busy (the worst case).
func BenchmarkRecordSize(b *testing.B) {
	for _, busy := range []int{5, 1} {
		b.Run(fmt.Sprintf("busy=1in%d", busy), func(b *testing.B) { recordSize(b, busy) })
	}
}

func recordSize(b *testing.B, busyEvery int) {
	const ticks = 3600
	for b.Loop() {
		dir := b.TempDir()
		l, clk, rec := benchLoop(b, 100, busyEvery, dir)
		for i := 0; i < ticks; i++ {
			clk.t = clk.t.Add(time.Second)
			if err := l.Step(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		rec.Close()
		segs, _ := segments(dir)
		var total int64
		for _, s := range segs {
			total += s.size
		}
		perTick := float64(total) / ticks
		b.ReportMetric(perTick, "bytes/tick")
		b.ReportMetric(float64(DefaultSize)/perTick/3600, "hours/256MiB")
		os.RemoveAll(dir)
	}
}

// BenchmarkReplay replays an hour of 100 cgroups (one in five busy) at a
// 1 s tick with the default policy; s/24h extrapolates to a day.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	l, clk, rec := benchLoop(b, 100, 5, dir)
	for i := 0; i < 3600; i++ {
		clk.t = clk.t.Add(time.Second)
		if err := l.Step(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	rec.Close()
	pol := defaultPolicy(b, nil)
	b.ResetTimer()
	for b.Loop() {
		res, err := Replay(context.Background(), dir, ReplayOptions{Policy: pol})
		if err != nil || res.Ticks != 3600 {
			b.Fatal(err, res.Ticks)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N)*24, "s/24h")
}

// BenchmarkAppendCgroup is the encoding of one busy cgroup's sample.
func BenchmarkAppendCgroup(b *testing.B) {
	src := newNoisySource(10, 1)
	var snap governor.Snapshot
	src.Sample(context.Background(), &snap)
	s := snap.Cgroups[5]
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendCgroup(buf[:0], s)
	}
}

// BenchmarkServeIdle is BenchmarkStep and BenchmarkRecordSize (one in
// five busy) with the idle cgroups in the snapshot as well, as a real
// host's are: BenchmarkStep and BenchmarkRecordSize leave them out, so
// they record only the busy fifth.
func BenchmarkServeIdle(b *testing.B) {
	src := func(n int) *noisySource {
		s := newNoisySource(n, 5)
		s.serveIdle = true
		return s
	}
	for _, n := range []int{100, 1000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("cgroups=%d/record=%v", n, on), func(b *testing.B) {
				dir := ""
				if on {
					dir = b.TempDir()
				}
				l, clk, rec := benchLoopSrc(b, src(n), dir)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					clk.t = clk.t.Add(time.Second)
					if err := l.Step(ctx); err != nil {
						b.Fatal(err)
					}
				}
				if rec != nil {
					rec.Close()
				}
			})
		}
	}
	b.Run("size/cgroups=100", func(b *testing.B) {
		const ticks = 3600
		for b.Loop() {
			dir := b.TempDir()
			l, clk, rec := benchLoopSrc(b, src(100), dir)
			for i := 0; i < ticks; i++ {
				clk.t = clk.t.Add(time.Second)
				if err := l.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			rec.Close()
			segs, _ := segments(dir)
			var total int64
			for _, s := range segs {
				total += s.size
			}
			perTick := float64(total) / ticks
			b.ReportMetric(perTick, "bytes/tick")
			b.ReportMetric(float64(DefaultSize)/perTick/3600, "hours/256MiB")
			os.RemoveAll(dir)
		}
	})
}

// BenchmarkHeap15k runs 90 ticks (three blocks) of 15,000 cgroups, the
// count governor-bench's kube layout makes for 10,000 containers, one in
// ten busy and the idle ones in the snapshot, with and without the
// recorder, and reports the largest heap in use after a tick
// (HeapInuse, read after each tick without forcing a collection, so it
// includes what the collector has not reclaimed yet, as the daemon's RSS
// does) and the live heap after a forced collection at the end, in MiB.
func BenchmarkHeap15k(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", on), func(b *testing.B) {
			for b.Loop() {
				dir := ""
				if on {
					dir = b.TempDir()
				}
				src := newNoisySource(15000, 10)
				src.serveIdle = true
				l, clk, rec := benchLoopSrc(b, src, dir)
				var ms runtime.MemStats
				var peak uint64
				for i := 0; i < 3*DefaultBlockTicks; i++ {
					clk.t = clk.t.Add(time.Second)
					if err := l.Step(context.Background()); err != nil {
						b.Fatal(err)
					}
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MiB")
				if rec != nil {
					rec.Close()
				}
				runtime.KeepAlive(l)
			}
		})
	}
}

// stillSource serves n cgroups whose values never change (no pressure,
// nothing measured but PSI), as the empty containers of governor-bench
// scale -populated-share 0 read on this host.
type stillSource struct{ cgs []governor.Sample }

func newStillSource(n int) *stillSource {
	s := &stillSource{}
	for i := 0; i < n; i++ {
		c := governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(100 + i), Path: fmt.Sprintf("kubepods.slice/pod%d.slice/c%d.scope", i/2, i)}, Populated: true}
		for sig := governor.Signal(0); sig <= governor.IOFullStall; sig++ {
			c.Set(sig, 0)
		}
		s.cgs = append(s.cgs, c)
	}
	return s
}

func (s *stillSource) Name() string { return "still" }

func (s *stillSource) Sample(_ context.Context, snap *governor.Snapshot) error {
	for i := range s.cgs {
		snap.Cgroups = append(snap.Cgroups, &s.cgs[i])
	}
	return nil
}

// BenchmarkStill15k is a Step over 15,000 cgroups of which none changes,
// with and without the recorder: what recording costs a large idle node.
func BenchmarkStill15k(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", on), func(b *testing.B) {
			dir := ""
			if on {
				dir = b.TempDir()
			}
			l, clk, rec := benchLoopSrc(b, newStillSource(15000), dir)
			for b.Loop() {
				clk.t = clk.t.Add(time.Second)
				if err := l.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			if rec != nil {
				rec.Close()
			}
		})
	}
}
