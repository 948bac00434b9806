package record

import (
	"math"
	"math/rand"
	"strconv"
	"testing"
)

// Every float the writer formats reads back as the same bits, through
// the fast paths and through strconv; and the fast parser agrees with
// strconv.ParseFloat on whatever it accepts.
func TestNumRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.37, 1e-7, 1e-6, 123456.789, 1 << 53, 1<<53 + 2, -(1 << 52),
		math.MaxFloat64, math.SmallestNonzeroFloat64, 4096 * 123457, 0.012345 * 100, 5e-324, 1e22, 1e23}
	for i := 0; i < 200000; i++ {
		switch i % 6 {
		case 0:
			vals = append(vals, math.Float64frombits(r.Uint64()))
		case 1:
			vals = append(vals, float64(r.Intn(50000))/1e6*100)
		case 2:
			vals = append(vals, float64(int(r.Float64()*500))/100)
		case 3:
			vals = append(vals, 4096*float64(r.Intn(1<<30)))
		case 4:
			vals = append(vals, float64(uint64(1)<<r.Intn(16))/1e6)
		case 5:
			vals = append(vals, r.NormFloat64()*math.Pow(10, float64(r.Intn(40)-20)))
		}
	}
	for _, f := range vals {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		b := appendNum(nil, f)
		var v Value
		if err := v.UnmarshalJSON(b); err != nil || math.Float64bits(v.V) != math.Float64bits(f) {
			t.Fatalf("%v (%#x) written %s read %v (%#x) %v", f, math.Float64bits(f), b, v.V, math.Float64bits(v.V), err)
		}
		for _, s := range []string{string(b), strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'e', -1, 64), strconv.FormatFloat(f, 'f', -1, 64)} {
			want, _ := strconv.ParseFloat(s, 64)
			if got, ok := parseShortNum([]byte(s)); ok && math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%s: parsed %v, strconv %v", s, got, want)
			}
		}
	}
}

func FuzzParseShortNum(f *testing.F) {
	f.Add([]byte("-0.00125e+3"))
	f.Fuzz(func(t *testing.T, n []byte) {
		got, ok := parseShortNum(n)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: %v, strconv %v %v", n, got, want, err)
		}
	})
}

func FuzzAppendNum(f *testing.F) {
	f.Add(0.37)
	f.Fuzz(func(t *testing.T, x float64) {
		b := appendNum(nil, x)
		var v Value
		if err := v.UnmarshalJSON(b); err != nil || math.Float64bits(v.V) != math.Float64bits(x) && !(math.IsNaN(x) && math.IsNaN(v.V)) {
			t.Fatalf("%v written %s read %v %v", x, b, v.V, err)
		}
	})
}
