package bpf

import (
	"math"
	"math/bits"
)

// Histogram layout, mirrored from c/governor.bpf.c: values are nanoseconds;
// with s sub-bucket bits each power of two is split into 2^s linear buckets.
// A value v < 2^s is bucket v; otherwise, with l = floor(log2 v), bucket
// ((l-s+1) << s) + (the s bits below v's leading one). Values of 2^40 ns
// (about 18 minutes) and above share the last bucket.
const (
	histMaxLog2    = 39
	histMaxSubbits = 2
	// histBuckets is the array size in the kernel's cg_stats (for the
	// largest resolution); fewer are used at lower resolutions.
	histBuckets = (histMaxLog2 - histMaxSubbits + 2) << histMaxSubbits
)

// histLayout describes one resolution.
type histLayout struct {
	subbits uint
}

// subbitsFor maps Options.HistogramSubBuckets (1, 2 or 4) to sub-bucket bits.
func subbitsFor(sub int) (uint, bool) {
	switch sub {
	case 1:
		return 0, true
	case 2:
		return 1, true
	case 0, 4:
		return 2, true
	}
	return 0, false
}

// n is the number of buckets in use.
func (h histLayout) n() int { return (histMaxLog2 - int(h.subbits) + 2) << h.subbits }

// bucket returns v's bucket, as the BPF program computes it.
func (h histLayout) bucket(v uint64) int {
	s := h.subbits
	if v < 1<<s {
		return int(v)
	}
	l := uint(63 - bits.LeadingZeros64(v))
	if l > histMaxLog2 {
		return h.n() - 1
	}
	return int((l-s+1)<<s) + int((v>>(l-s))&(1<<s-1))
}

// bounds returns bucket i's value range [lo, hi) in nanoseconds.
func (h histLayout) bounds(i int) (lo, hi float64) {
	s := h.subbits
	if i < 1<<s {
		return float64(i), float64(i + 1)
	}
	l := uint(i>>s) + s - 1
	sub := uint64(i) & (1<<s - 1)
	width := uint64(1) << (l - s)
	base := uint64(1)<<l + sub*width
	if i == h.n()-1 {
		return float64(base), math.Inf(1)
	}
	return float64(base), float64(base + width)
}

// quantile returns the q-quantile (0 < q <= 1) in nanoseconds of a histogram
// of counts, interpolating linearly inside the bucket where it falls. ok is
// false for an empty histogram.
func (h histLayout) quantile(counts []uint64, q float64) (ns float64, ok bool) {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		next := cum + float64(c)
		if next >= rank {
			lo, hi := h.bounds(i)
			if math.IsInf(hi, 1) {
				return lo, true
			}
			return lo + (hi-lo)*(rank-cum)/float64(c), true
		}
		cum = next
	}
	lo, _ := h.bounds(len(counts) - 1)
	return lo, true
}
