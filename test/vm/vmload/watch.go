package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// watch samples cgroup files into a CSV with a Unix-time column "t" until
// signalled, for plotting. Each argument is NAME=PATH; the value written is
// the "some" avg10 of a *.pressure file (NAME=PATH#full for "full"), the
// quota in CPUs of cpu.max ("max" counts as every CPU), or else the file's
// first field.
//
//	vmload watch -out watch.csv -every 500ms svc_cpu=/sys/fs/cgroup/a/cpu.pressure batch_max=/sys/fs/cgroup/b/cpu.max
func watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	out := fs.String("out", "", "CSV file")
	every := fs.Duration("every", 500*time.Millisecond, "period")
	_ = fs.Parse(args)
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("watch: -out and at least one NAME=PATH are required")
	}
	type col struct{ name, path, kind string }
	var cols []col
	head := []string{"t"}
	for _, a := range fs.Args() {
		name, path, ok := strings.Cut(a, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("watch: %q is not NAME=PATH", a)
		}
		kind := "some"
		if p, k, ok := strings.Cut(path, "#"); ok {
			path, kind = p, k
		}
		cols = append(cols, col{name, path, kind})
		head = append(head, name)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintln(f, strings.Join(head, ","))
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	tk := time.NewTicker(*every)
	defer tk.Stop()
	row := make([]string, len(cols)+1)
	for {
		row[0] = unixSeconds(time.Now())
		for i, c := range cols {
			row[i+1] = watchValue(c.path, c.kind)
		}
		fmt.Fprintln(f, strings.Join(row, ","))
		select {
		case <-ch:
			return nil
		case <-tk.C:
		}
	}
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// watchValue reads one value for watch; "" when the file cannot be read.
func watchValue(path, kind string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	switch {
	case strings.HasSuffix(path, ".pressure") || strings.HasPrefix(path, "/proc/pressure/"):
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != kind {
				continue
			}
			if v, ok := strings.CutPrefix(f[1], "avg10="); ok {
				return v
			}
		}
		return ""
	case strings.HasSuffix(path, "cpu.max"):
		f := strings.Fields(s)
		if len(f) != 2 {
			return ""
		}
		if f[0] == "max" {
			return strconv.Itoa(runtime.NumCPU())
		}
		q, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || p == 0 {
			return ""
		}
		return strconv.FormatFloat(q/p, 'f', 3, 64)
	}
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// spinCPU busy-loops until the calling thread has used d of CPU time: work
// that takes longer in wall time when the thread has to share its CPU, as
// a request's real work does. It locks the goroutine to its thread.
func spinCPU(d time.Duration) {
	runtime.LockOSThread()
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		spin(d)
		return
	}
	end := ts.Nano() + d.Nanoseconds()
	for {
		for i := 0; i < 1000; i++ {
			spinSink++
		}
		if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil || ts.Nano() >= end {
			return
		}
	}
}

var spinSink uint64

// latencyTrace writes, for every window of a periodic service's requests,
// one CSV row "t,p50_ms,p99_ms,max_ms,n" (t in Unix seconds at the end of
// the window), so the service's latency can be drawn over time.
type latencyTrace struct {
	f      *os.File
	window time.Duration
	start  time.Time
	lat    []time.Duration
}

func newLatencyTrace(path string, window time.Duration) (*latencyTrace, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(f, "t,p50_ms,p99_ms,max_ms,n")
	return &latencyTrace{f: f, window: window, start: time.Now()}, nil
}

func (l *latencyTrace) add(d time.Duration) {
	if l == nil {
		return
	}
	l.lat = append(l.lat, d)
	if now := time.Now(); now.Sub(l.start) >= l.window {
		l.flush(now)
	}
}

func (l *latencyTrace) flush(now time.Time) {
	if len(l.lat) > 0 {
		sort.Slice(l.lat, func(i, j int) bool { return l.lat[i] < l.lat[j] })
		q := func(p float64) float64 { return float64(l.lat[int(p*float64(len(l.lat)-1))].Microseconds()) / 1000 }
		fmt.Fprintf(l.f, "%s,%.3f,%.3f,%.3f,%d\n", unixSeconds(now), q(0.5), q(0.99), q(1), len(l.lat))
	}
	l.lat, l.start = l.lat[:0], now
}

func (l *latencyTrace) close() error {
	if l == nil {
		return nil
	}
	l.flush(time.Now())
	return l.f.Close()
}
