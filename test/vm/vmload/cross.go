package main

import "time"

// crossing finds the moment a cgroup's PSI stall first reaches a policy's
// threshold: the first sample at which the stall time (the growth of the
// pressure file's total=, in µs) over the trailing window is at least
// need. With window 100 ms and need 10 ms that is "memory.some.stall above
// 10%" at the finest grain the governor can see it (its fast path counts
// stalls over 100 ms). A sliding window crosses no later than any aligned
// one of the same data; but this data is PSI's total, polled every 10 ms,
// which weights CPUs by their non-idle time and can trail the kernel's
// own stall accounting that the fast path reads, so the governor may act
// before this crossing (react counts that as 0).
type crossing struct {
	window  time.Duration
	need    int64 // µs of stall within window
	samples []psiSample
	at      time.Time // zero until crossed
}

type psiSample struct {
	t     time.Time
	total int64 // µs
}

// add records a sample (in time order) and reports whether the threshold
// has been reached, at this sample or before. The stall over the window
// assumes a steady rate between two samples.
func (c *crossing) add(t time.Time, total int64) bool {
	if !c.at.IsZero() {
		return true
	}
	c.samples = append(c.samples, psiSample{t, total})
	// The total a window ago: interpolated between the latest sample at
	// least a window old and the one after it; the oldest sample while
	// less than a window has passed.
	base, from := 0, c.samples[0].total
	for i := len(c.samples) - 2; i >= 0; i-- {
		s0, s1 := c.samples[i], c.samples[i+1]
		if back := t.Add(-c.window); !s0.t.After(back) {
			base = i
			from = s0.total + int64(float64(s1.total-s0.total)*float64(back.Sub(s0.t))/float64(s1.t.Sub(s0.t)))
			break
		}
	}
	if total-from >= c.need {
		c.at = t
		c.samples = nil
		return true
	}
	// Keep the base and what came after it.
	if base > 0 {
		c.samples = append(c.samples[:0], c.samples[base:]...)
	}
	return false
}
