package policies

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/governor-dev/governor/governor"
)

// Knob- and signal-specific value parsing, on top of the unit parsers.

// knobRange is the range of values the kernel accepts for a knob, in the
// knob's unit (governor/types.go).
func knobRange(k governor.Knob) (lo, hi int64) {
	switch k {
	case governor.CPUWeight, governor.IOWeight:
		return 1, 10000
	case governor.CPUMax:
		// 0.01 CPU: 1 ms of quota per the default 100 ms period, the
		// loop's floor for cpu.max whatever the period.
		return 10_000, governor.Unlimited
	case governor.CPUIdle:
		return 0, 1
	}
	return 0, governor.Unlimited // memory.*
}

// defaultMin is the floor a rule or suppress knob uses when no min is given:
// the knob's smallest valid value.
func defaultMin(k governor.Knob) int64 {
	lo, _ := knobRange(k)
	return lo
}

func isMemoryKnob(k governor.Knob) bool {
	return k.Controller() == "memory"
}

// knobUnitHelp describes how values of a knob are written.
func knobUnitHelp(k governor.Knob) string {
	switch {
	case isMemoryKnob(k):
		return `a size such as "512MiB" or "max"`
	case k == governor.CPUMax:
		return `a number of CPUs from 0.01 up, such as 0.5, or "max"`
	case k == governor.CPUIdle:
		return "0 or 1"
	}
	return "a whole number from 1 to 10000"
}

// parseInt parses a whole number.
func parseInt(s string) (int64, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	if unit != "" || v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

// knobValue parses a limit (min, max, floor) for a knob, in the knob's unit.
func knobValue(k governor.Knob, s string) (int64, error) {
	s = strings.TrimSpace(s)
	var (
		v   int64
		err error
	)
	switch {
	case s == "max" && (isMemoryKnob(k) || k == governor.CPUMax):
		return governor.Unlimited, nil
	case s == "max":
		return 0, fmt.Errorf(`%s has no "max"; write %s`, k, knobUnitHelp(k))
	case isMemoryKnob(k):
		v, err = parseSize(s)
	case k == governor.CPUMax:
		v, err = parseCores(s)
	default:
		v, err = parseInt(s)
	}
	if err != nil {
		return 0, fmt.Errorf("%v; %s takes %s", err, k, knobUnitHelp(k))
	}
	if lo, hi := knobRange(k); v < lo || v > hi {
		return 0, fmt.Errorf("%s is out of range for %s, which takes %s", s, k, knobUnitHelp(k))
	}
	return v, nil
}

// parseStep parses how far one action moves a knob: "N%" of the current
// value, or an absolute amount in the knob's unit. A step that moves the knob
// down (down=true) must stay below 100%.
func parseStep(k governor.Knob, s string, down bool) (governor.Step, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "%") {
		if k == governor.CPUIdle {
			return governor.Step{}, fmt.Errorf("cpu.idle only moves between 0 and 1: use step = 1")
		}
		p, err := parsePercent(s)
		if err != nil {
			return governor.Step{}, err
		}
		if p <= 0 {
			return governor.Step{}, fmt.Errorf("a step of %s would never move the knob; it must be above 0%%", s)
		}
		if down && p >= 100 {
			return governor.Step{}, fmt.Errorf("a downward step of %s would take %s to zero or below; it must be below 100%%", s, k)
		}
		return governor.Step{Percent: p}, nil
	}
	var (
		v   int64
		err error
	)
	switch {
	case s == "max":
		return governor.Step{}, fmt.Errorf(`a step cannot be "max"`)
	case isMemoryKnob(k):
		v, err = parseSize(s)
		if err == nil && v == 0 {
			err = fmt.Errorf("a step of 0 would never move the knob")
		}
	case k == governor.CPUMax:
		v, err = parseCores(s)
	case k == governor.CPUIdle:
		v, err = parseInt(s)
		if err == nil && v != 1 {
			err = fmt.Errorf("cpu.idle only moves between 0 and 1: use step = 1")
		}
	default:
		v, err = parseInt(s)
		if err == nil && (v < 1 || v > 9999) {
			err = fmt.Errorf("a %s step must be from 1 to 9999", k)
		}
	}
	if err != nil {
		return governor.Step{}, fmt.Errorf("%v; a step is a percentage such as \"10%%\" or an amount in %s's unit (%s)", err, k, knobUnitHelp(k))
	}
	return governor.Step{Amount: v}, nil
}

// byteRateSignals are UnitBytes signals that are really throughput (bytes
// per second); their thresholds may be written "50MiB/s".
func byteRateSignal(s governor.Signal) bool {
	return s == governor.IOReadBytes || s == governor.IOWriteBytes
}

// isPSI reports whether s is one of the PSI signals, which are bounded by
// 100%.
func isPSI(s governor.Signal) bool {
	return s <= governor.IOFullStall
}

// parseThreshold parses a condition threshold for a signal, in the signal's
// unit. A value whose unit does not fit the signal is an error that names
// both.
func parseThreshold(sig governor.Signal, s string) (float64, error) {
	s = strings.TrimSpace(s)
	got := classify(s)
	mismatch := func(example string) error {
		if strings.HasPrefix(s, "-") {
			return fmt.Errorf("%q: a threshold must not be negative", s)
		}
		if got == kindUnknown {
			return fmt.Errorf("%q is not a valid value for %s, which is measured in %s: write %s", s, sig, sig.Unit(), example)
		}
		return fmt.Errorf("%q is %s, but %s is measured in %s: write %s", s, got, sig, sig.Unit(), example)
	}
	switch sig.Unit() {
	case governor.UnitPercent:
		if got != kindPercent {
			if got == kindNumber {
				return 0, fmt.Errorf("%q has no unit; %s is measured in percent: write %q", s, sig, s+"%")
			}
			return 0, mismatch(`a percentage such as "5%"`)
		}
		v, err := parsePercent(s)
		if err != nil {
			return 0, err
		}
		if isPSI(sig) && v > 100 {
			return 0, fmt.Errorf("%s can never exceed 100%%, so %q is out of range", sig, s)
		}
		return v, nil
	case governor.UnitBytes:
		if byteRateSignal(sig) {
			if got == kindByteRate {
				return parseByteRate(s)
			}
			if got != kindSize && got != kindNumber {
				return 0, mismatch(`a throughput such as "50MiB/s"`)
			}
		} else if got != kindSize && got != kindNumber {
			return 0, mismatch(`a size such as "512MiB"`)
		}
		v, err := parseSize(s)
		return float64(v), err
	case governor.UnitSeconds:
		if got == kindNumber {
			return 0, fmt.Errorf("%q has no unit; %s is a latency: write e.g. %q", s, sig, s+"ms")
		}
		if got != kindDuration {
			return 0, mismatch(`a latency such as "5ms"`)
		}
		d, err := parseDuration(s)
		return d.Seconds(), err
	case governor.UnitPerSecond:
		switch got {
		case kindRate:
			return parseRate(s)
		case kindNumber:
			v, _, err := splitNumber(s)
			return v, err
		}
		return 0, mismatch(`a rate such as "3/s" or a plain number of events per second`)
	case governor.UnitCores:
		if got != kindNumber {
			return 0, mismatch("a number of CPUs such as 1.5")
		}
		v, _, err := splitNumber(s)
		return v, err
	}
	return 0, fmt.Errorf("signal %s has an unknown unit", sig)
}
