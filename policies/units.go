package policies

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file holds the pure unit parsers. They take the text of a value and
// return it in the representation governor.Policy uses; the compiler wraps
// them to attach source ranges to errors. Every value is parsed exactly once,
// at load time.

// kind is what a piece of text looks like, used to explain a mismatch
// ("a duration, but the signal is measured in percent").
type kind uint8

const (
	kindUnknown  kind = iota
	kindNumber        // 12, 0.5
	kindPercent       // 5%
	kindSize          // 512MiB, 2G
	kindDuration      // 5ms, 30s
	kindRate          // 3/s, 10/min
	kindByteRate      // 50MiB/s
	kindMax           // max
)

func (k kind) String() string {
	switch k {
	case kindNumber:
		return "a plain number"
	case kindPercent:
		return "a percentage"
	case kindSize:
		return "a size"
	case kindDuration:
		return "a duration"
	case kindRate:
		return "a rate"
	case kindByteRate:
		return "a byte rate"
	case kindMax:
		return `"max"`
	}
	return "not a recognised quantity"
}

// classify tells what kind of quantity s is written as. It does not check
// ranges; the typed parsers do.
func classify(s string) kind {
	s = strings.TrimSpace(s)
	switch {
	case s == "max":
		return kindMax
	case strings.HasSuffix(s, "%"):
		if _, err := parsePercent(s); err == nil {
			return kindPercent
		}
	case strings.Contains(s, "/"):
		if _, err := parseByteRate(s); err == nil {
			return kindByteRate
		}
		if _, err := parseRate(s); err == nil {
			return kindRate
		}
	default:
		if _, _, err := splitNumber(s); err == nil && strings.TrimLeft(s, "-0123456789.") == "" {
			return kindNumber
		}
		if _, err := parseDuration(s); err == nil {
			return kindDuration
		}
		if _, err := parseSize(s); err == nil {
			return kindSize
		}
	}
	return kindUnknown
}

// splitNumber splits "1.5GiB" into 1.5 and "GiB". The number is a plain
// decimal (digits with at most one '.'); signs, exponents, hex, underscores,
// "inf" and "nan" are refused so that every accepted value reads the same to
// a human as to the parser. Space between number and unit is allowed.
func splitNumber(s string) (float64, string, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	i := 0
	dots := 0
	digits := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		if s[i] == '.' {
			dots++
		} else {
			digits++
		}
		i++
	}
	if digits == 0 || dots > 1 {
		return 0, "", fmt.Errorf("%q does not start with a number", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, "", fmt.Errorf("%q: bad number: %v", s, err)
	}
	if neg {
		return 0, "", errors.New("must not be negative")
	}
	return v, strings.TrimSpace(s[i:]), nil
}

var sizeUnits = map[string]float64{
	"":    1,
	"B":   1,
	"K":   1 << 10,
	"KiB": 1 << 10,
	"M":   1 << 20,
	"MiB": 1 << 20,
	"G":   1 << 30,
	"GiB": 1 << 30,
	"T":   1 << 40,
	"TiB": 1 << 40,
	"P":   1 << 50,
	"PiB": 1 << 50,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"PB":  1e15,
}

const sizeUnitHelp = `B, K/KiB, M/MiB, G/GiB, T/TiB, P/PiB (powers of 1024) or kB/KB, MB, GB, TB, PB (powers of 1000)`

// parseSize parses a byte count: "512MiB", "2G" (= 2 GiB, as in systemd and
// the kernel's memparse), "1.5GiB", "100MB" (= 100,000,000), or a bare
// integer number of bytes. "max" is not a size; callers that allow it check
// for it first.
func parseSize(s string) (int64, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q (use %s)", unit, sizeUnitHelp)
	}
	if mult == 1 && v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	// Integers without a fraction are multiplied exactly.
	num := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), unit))
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		m := int64(mult)
		if n != 0 && m > (math.MaxInt64-1)/n {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n * m, nil
	}
	b := math.Round(v * mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// parseDuration parses a Go duration ("30s", "250ms", "1m30s", "5us"); it must
// not be negative and must carry a unit.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("must not be negative")
	}
	if s == "0" {
		return 0, nil
	}
	if s != "" && strings.TrimLeft(s, "0123456789.") == "" {
		return 0, fmt.Errorf("%q has no unit (write e.g. %q or %q)", s, s+"s", s+"ms")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. \"30s\", \"250ms\", \"1m30s\")", s)
	}
	return d, nil
}

// parsePercent parses "0.5%" into 0.5. The '%' is required: a bare 0.5 could
// mean half a percent or fifty.
func parsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if !strings.HasSuffix(t, "%") {
		return 0, fmt.Errorf("%q is not a percentage (write e.g. \"5%%\")", s)
	}
	v, unit, err := splitNumber(strings.TrimSuffix(t, "%"))
	if err != nil {
		return 0, err
	}
	if unit != "" {
		return 0, fmt.Errorf("%q is not a percentage (write e.g. \"5%%\")", s)
	}
	return v, nil
}

var rateUnits = map[string]float64{"s": 1, "sec": 1, "min": 1.0 / 60, "h": 1.0 / 3600}

// parseRate parses an event rate "3/s", "30/min", "100/h" into events per
// second.
func parseRate(s string) (float64, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%q is not a rate (write e.g. \"3/s\" or \"30/min\")", s)
	}
	v, unit, err := splitNumber(num)
	if err != nil {
		return 0, err
	}
	f, known := rateUnits[strings.TrimSpace(per)]
	if unit != "" || !known {
		return 0, fmt.Errorf("%q is not a rate (write e.g. \"3/s\" or \"30/min\")", s)
	}
	return v * f, nil
}

// parseByteRate parses a throughput "50MiB/s" into bytes per second.
func parseByteRate(s string) (float64, error) {
	size, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%q is not a byte rate (write e.g. \"50MiB/s\")", s)
	}
	_, unit, err := splitNumber(size)
	if err != nil {
		return 0, err
	}
	f, known := rateUnits[strings.TrimSpace(per)]
	if unit == "" || !known {
		return 0, fmt.Errorf("%q is not a byte rate (write e.g. \"50MiB/s\")", s)
	}
	b, err := parseSize(size)
	if err != nil {
		return 0, err
	}
	return float64(b) * f, nil
}

// parseCores parses a number of CPUs ("0.5", "2") into millionths of a CPU,
// the unit of the cpu.max knob. The kernel's smallest quota is 1 ms per
// period of at most 1 s, so anything below 0.001 CPU is refused.
func parseCores(s string) (int64, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	if unit != "" {
		return 0, fmt.Errorf("%q: cores are a plain number such as 0.5 or 2", s)
	}
	if v < 0.001 {
		return 0, fmt.Errorf("%s CPU is below the kernel's smallest quota (0.001 CPU: 1 ms per 1 s period)", s)
	}
	if v > 1e6 {
		return 0, fmt.Errorf("%s CPUs is too large", s)
	}
	return int64(math.Round(v * 1e6)), nil
}
