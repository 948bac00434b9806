package main

// plot draws time series from CSV files as an SVG of stacked panels, so a
// scenario's results can be looked at rather than read. Every CSV has a
// header line and a column "t" in Unix seconds; the x axis is seconds from
// the earliest t of any series.
//
//	vmload plot -out coloc.svg -title "..." \
//	   -series "Latency (ms)|p99|lat.csv|p99_ms" -series "Pressure (%)|cpu some|watch.csv|svc_cpu_some" \
//	   -span "batch, no governor|1733000000|1733000020"

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ";") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type point struct{ t, v float64 }

type series struct {
	panel, label string
	pts          []point
}

type span struct {
	label      string
	start, end float64
}

// readColumn reads column col (and "t") of a CSV file; rows whose value does
// not parse as a number are skipped.
func readColumn(file, col string) ([]point, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header: %w", file, err)
	}
	ti, vi := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(h) {
		case "t":
			ti = i
		case col:
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return nil, fmt.Errorf("%s: needs columns t and %s (has %s)", file, col, strings.Join(head, ","))
	}
	var pts []point
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if ti >= len(rec) || vi >= len(rec) {
			continue
		}
		t, err1 := strconv.ParseFloat(rec[ti], 64)
		v, err2 := strconv.ParseFloat(rec[vi], 64)
		if err1 != nil || err2 != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		pts = append(pts, point{t, v})
	}
	return pts, nil
}

func plot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ExitOnError)
	out := fs.String("out", "", "SVG file to write")
	title := fs.String("title", "", "title")
	var ser, spans multiFlag
	fs.Var(&ser, "series", "PANEL|LABEL|FILE|COLUMN (repeatable; series with one PANEL share it)")
	fs.Var(&spans, "span", "LABEL|START|END in Unix seconds: a shaded interval (repeatable)")
	_ = fs.Parse(args)
	if *out == "" || len(ser) == 0 {
		return fmt.Errorf("plot: -out and at least one -series are required")
	}
	var all []series
	var panels []string
	t0, t1 := math.Inf(1), math.Inf(-1)
	for _, s := range ser {
		f := strings.Split(s, "|")
		if len(f) != 4 {
			return fmt.Errorf("plot: -series %q: want PANEL|LABEL|FILE|COLUMN", s)
		}
		pts, err := readColumn(f[2], f[3])
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		found := false
		for _, p := range panels {
			found = found || p == f[0]
		}
		if !found {
			panels = append(panels, f[0])
		}
		for _, p := range pts {
			t0, t1 = math.Min(t0, p.t), math.Max(t1, p.t)
		}
		all = append(all, series{panel: f[0], label: f[1], pts: pts})
	}
	var sp []span
	for _, s := range spans {
		f := strings.Split(s, "|")
		if len(f) != 3 {
			return fmt.Errorf("plot: -span %q: want LABEL|START|END", s)
		}
		a, err1 := strconv.ParseFloat(f[1], 64)
		b, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || b < a {
			return fmt.Errorf("plot: -span %q: bad times", s)
		}
		sp = append(sp, span{f[0], a, b})
		t0, t1 = math.Min(t0, a), math.Max(t1, b)
	}
	if math.IsInf(t0, 1) || t1 <= t0 {
		return fmt.Errorf("plot: no data to draw")
	}
	w, err := os.Create(*out)
	if err != nil {
		return err
	}
	writeSVG(w, *title, panels, all, sp, t0, t1)
	return w.Close()
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func writeSVG(w io.Writer, title string, panels []string, all []series, spans []span, t0, t1 float64) {
	const (
		width, left, right, top = 960.0, 70.0, 190.0, 58.0
		panelH, gap             = 170.0, 40.0
	)
	plotW := width - left - right
	height := top + float64(len(panels))*(panelH+gap) + 20
	x := func(t float64) float64 { return left + (t-t0)/(t1-t0)*plotW }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for pi, pname := range panels {
		y0 := top + float64(pi)*(panelH+gap)
		ymax := 0.0
		for _, s := range all {
			if s.panel != pname {
				continue
			}
			for _, p := range s.pts {
				ymax = math.Max(ymax, p.v)
			}
		}
		ymax = niceMax(ymax)
		y := func(v float64) float64 { return y0 + panelH - v/ymax*panelH }
		kinds := map[string]int{}
		for i, s := range spans {
			// Spans of one kind (the label up to its first '_': "gov_1",
			// "gov_2") share a shade.
			kind, _, _ := strings.Cut(s.label, "_")
			if _, ok := kinds[kind]; !ok {
				kinds[kind] = len(kinds)
			}
			shade := []string{"#f2f2f2", "#e6f0fa", "#fdf0e6", "#eef7ea", "#f5eefa"}[kinds[kind]%5]
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
				x(s.start), y0, math.Max(x(s.end)-x(s.start), 1), panelH, shade)
			if pi == 0 {
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" fill="#555">%s</text>`+"\n",
					x(s.start)+3, y0+12+float64(i%2)*12, html.EscapeString(s.label))
			}
		}
		fmt.Fprintf(w, `<rect x="%.0f" y="%.1f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", left, y0, plotW, panelH)
		fmt.Fprintf(w, `<text x="%.0f" y="%.1f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(pname))
		for _, f := range []float64{0, 0.5, 1} {
			fmt.Fprintf(w, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(f*ymax)+4, strconv.FormatFloat(f*ymax, 'g', 4, 64))
			fmt.Fprintf(w, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+plotW, y(f*ymax), y(f*ymax))
		}
		li := 0
		for _, s := range all {
			if s.panel != pname {
				continue
			}
			color := palette[li%len(palette)]
			var b strings.Builder
			for i, p := range s.pts {
				cmd := "L"
				if i == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&b, "%s%.1f,%.1f ", cmd, x(p.t), y(p.v))
			}
			if b.Len() > 0 {
				fmt.Fprintf(w, `<path d="%s" fill="none" stroke="%s" stroke-width="1.3"/>`+"\n", strings.TrimSpace(b.String()), color)
			}
			ly := y0 + 14 + float64(li)*16
			fmt.Fprintf(w, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", left+plotW+10, left+plotW+28, ly-4, ly-4, color)
			fmt.Fprintf(w, `<text x="%.0f" y="%.1f">%s</text>`+"\n", left+plotW+32, ly, html.EscapeString(s.label))
			li++
		}
		// x axis: seconds from the start.
		step := niceMax((t1 - t0) / 8)
		for s := 0.0; s <= t1-t0+1e-9; s += step {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x(t0+s), y0+panelH+14, strconv.FormatFloat(s, 'f', -1, 64))
		}
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="end" font-size="10">seconds</text>`+"\n", left+plotW, height-4)
	fmt.Fprintln(w, "</svg>")
}
