package main

import (
	"testing"
	"time"
)

func TestCrossing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at    int   // ms
		total int64 // µs
		want  bool
	}
	cases := []struct {
		name  string
		steps []step
		at    int // ms of the crossing, -1 for none
	}{
		{"burst crosses at once", []step{{0, 0, false}, {10, 12000, true}}, 10},
		{"light start: 5 % for 300 ms, then heavy", []step{
			{0, 0, false}, {50, 2500, false}, {100, 5000, false}, {150, 7500, false},
			{200, 10000, false}, {250, 12500, false}, {300, 15000, false},
			// 20 % from 300 on: (220, 320] holds 4 + 4 ms, (240, 340] 3 + 8 ms
			{320, 19000, false}, {340, 23000, true}}, 340},
		{"stall spread thin never crosses", []step{
			{0, 0, false}, {100, 9000, false}, {200, 18000, false}, {300, 27000, false}, {400, 36000, false}}, -1},
		{"exactly the threshold crosses", []step{{0, 0, false}, {100, 10000, true}}, 100},
		{"stays crossed", []step{{0, 0, false}, {10, 20000, true}, {20, 20000, true}}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &crossing{window: 100 * time.Millisecond, need: 10000}
			for _, s := range tc.steps {
				if got := c.add(ms(s.at), s.total); got != s.want {
					t.Fatalf("at %d ms (total %d µs): crossed %v, want %v", s.at, s.total, got, s.want)
				}
			}
			switch {
			case tc.at < 0 && !c.at.IsZero():
				t.Fatalf("crossed at %v, want never", c.at.Sub(t0))
			case tc.at >= 0 && !c.at.Equal(ms(tc.at)):
				t.Fatalf("crossed at %v, want %d ms", c.at.Sub(t0), tc.at)
			}
		})
	}
}

// The window slides: old samples are dropped, and the base is the latest
// sample at least a window old.
func TestCrossingSlides(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := &crossing{window: 100 * time.Millisecond, need: 10000}
	total := int64(0)
	for i := 0; i <= 1000; i += 10 { // 9 % of every 10 ms
		if c.add(t0.Add(time.Duration(i)*time.Millisecond), total) {
			t.Fatalf("crossed at %d ms with 9 %% stall", i)
		}
		total += 900
	}
	if n := len(c.samples); n > 12 {
		t.Fatalf("%d samples kept, want at most a window's", n)
	}
}
