package bpf

import (
	"math"
	"testing"
)

func TestHistLayoutBuckets(t *testing.T) {
	for _, sub := range []int{1, 2, 4} {
		sb, ok := subbitsFor(sub)
		if !ok {
			t.Fatalf("subbitsFor(%d) not ok", sub)
		}
		h := histLayout{subbits: sb}
		if h.n() > histBuckets {
			t.Fatalf("sub %d: %d buckets > array size %d", sub, h.n(), histBuckets)
		}
		prevHi := 0.0
		for i := 0; i < h.n(); i++ {
			lo, hi := h.bounds(i)
			if lo != prevHi {
				t.Fatalf("sub %d bucket %d: lo %v, previous hi %v (gap or overlap)", sub, i, lo, prevHi)
			}
			if got := h.bucket(uint64(lo)); got != i {
				t.Fatalf("sub %d: bucket(%v) = %d, want %d", sub, lo, got, i)
			}
			if !math.IsInf(hi, 1) {
				if got := h.bucket(uint64(hi) - 1); got != i {
					t.Fatalf("sub %d: bucket(%v) = %d, want %d", sub, hi-1, got, i)
				}
				// Relative width bounds the quantile error.
				if lo >= float64(int(1)<<sb) && (hi-lo)/lo > 1/float64(sub)+1e-9 {
					t.Fatalf("sub %d bucket %d [%v,%v): too wide", sub, i, lo, hi)
				}
			}
			prevHi = hi
		}
		if got := h.bucket(math.MaxUint64); got != h.n()-1 {
			t.Fatalf("sub %d: bucket(max) = %d, want last %d", sub, got, h.n()-1)
		}
	}
	if _, ok := subbitsFor(3); ok {
		t.Fatal("3 sub-buckets accepted")
	}
}

func TestHistQuantile(t *testing.T) {
	h := histLayout{subbits: 2}
	counts := make([]uint64, h.n())
	if _, ok := h.quantile(counts, 0.5); ok {
		t.Fatal("quantile of empty histogram is ok")
	}
	// 90 samples at 10 µs, 10 at 5 ms.
	counts[h.bucket(10_000)] = 90
	counts[h.bucket(5_000_000)] = 10
	for _, tc := range []struct {
		q      float64
		lo, hi float64
	}{
		{0.5, 8192, 10240 + 2048}, // 10 µs lies in [10240-2048, 10240+...)
		{0.9, 8192, 12288},
		{0.99, 4_194_304, 5_242_880 + 1},
	} {
		v, ok := h.quantile(counts, tc.q)
		if !ok || v < tc.lo || v > tc.hi {
			t.Errorf("q%v = %v (ok %v), want within [%v, %v]", tc.q, v, ok, tc.lo, tc.hi)
		}
	}
}
