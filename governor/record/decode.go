package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A hand-written decoder for the cgroup lists, which are nearly all of a
// recording: encoding/json's reflection made replay spend three quarters
// of its time here. It accepts any valid JSON for these objects (keys in
// any order, whitespace, escapes; unknown keys skipped) and rejects the
// rest with the byte position.

// CgroupList is a tick's cgroups.
type CgroupList []Cgroup

// UnmarshalJSON parses an array of cgroup objects.
func (l *CgroupList) UnmarshalJSON(b []byte) error {
	p := parser{b: b}
	out := (*l)[:0]
	if err := p.array(func() error {
		out = append(out, Cgroup{})
		return p.cgroup(&out[len(out)-1], nil, false)
	}); err != nil {
		return err
	}
	*l = out
	return p.end()
}

// UnmarshalJSON parses one cgroup object.
func (c *Cgroup) UnmarshalJSON(b []byte) error {
	p := parser{b: b}
	if err := p.cgroup(c, nil, false); err != nil {
		return err
	}
	return p.end()
}

type parser struct {
	b    []byte
	i    int
	slab []Value
}

func (p *parser) errf(f string, a ...any) error {
	return fmt.Errorf("byte %d: %s", p.i, fmt.Sprintf(f, a...))
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return p.errf("trailing data")
	}
	return nil
}

func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) expect(c byte) error {
	if p.peek() != c {
		return p.errf("want %q", c)
	}
	p.i++
	return nil
}

func (p *parser) literal(lit string) bool {
	p.ws()
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// array parses '[' elem (',' elem)* ']' calling elem for each.
func (p *parser) array(elem func() error) error {
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errf("want ',' or ']'")
		}
	}
}

// object parses '{' "key": value, ... '}' calling field for each key.
func (p *parser) object(field func(key string) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		key, err := p.key()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errf("want ',' or '}'")
		}
	}
}

// key is str for an object's key: the recording's own keys without
// allocating a string for each.
func (p *parser) key() (string, error) {
	if p.peek() == '"' {
		if j := bytes.IndexByte(p.b[p.i+1:], '"'); j >= 0 {
			k := p.b[p.i+1 : p.i+1+j]
			var s string
			switch string(k) { // no allocation: the compiler compares in place
			case "id":
				s = "id"
			case "m":
				s = "m"
			case "v":
				s = "v"
			case "p":
				s = "p"
			case "pop":
				s = "pop"
			case "t":
				s = "t"
			case "seq":
				s = "seq"
			case "cg":
				s = "cg"
			case "host":
				s = "host"
			}
			if s != "" {
				p.i += j + 2
				return s, nil
			}
		}
	}
	k, err := p.str()
	if err != nil {
		return k, err
	}
	// encoding/json matches a key to a field case-insensitively; so do
	// we (no writer writes such keys, but a reader should not read a line
	// otherwise than encoding/json).
	for _, known := range knownKeys {
		if strings.EqualFold(k, known) {
			return known, nil
		}
	}
	return k, nil
}

var knownKeys = []string{"id", "m", "v", "p", "pop", "by", "t", "seq", "cg", "host", "meta", "ctl", "rd", "fx", "act", "mem"}

func (p *parser) str() (string, error) {
	if p.peek() != '"' {
		return "", p.errf("want a string")
	}
	start := p.i
	p.i++
	plain := true
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '\\':
			plain = false
			p.i += 2
			continue
		case c == '"':
			p.i++
			// Invalid UTF-8 goes the slow way too: encoding/json reads
			// each bad byte as U+FFFD, and so must we (a forged line; the
			// writer never writes one).
			if raw := p.b[start+1 : p.i-1]; plain && utf8.Valid(raw) {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", p.errf("bad string: %v", err)
			}
			return s, nil
		case c < 0x20:
			return "", p.errf("control character in string")
		}
		p.i++
	}
	return "", p.errf("unterminated string")
}

// number returns the bytes of a JSON number.
func (p *parser) number() ([]byte, error) {
	p.ws()
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if p.i == start {
		return nil, p.errf("want a number")
	}
	return p.b[start:p.i], nil
}

func (p *parser) value(v *Value) error {
	switch c := p.peek(); {
	case c == 'n':
		if !p.literal("null") {
			return p.errf("want null")
		}
		*v = Value{}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		switch s {
		case "NaN":
			*v = Value{math.NaN(), true}
		case "+Inf":
			*v = Value{math.Inf(1), true}
		case "-Inf":
			*v = Value{math.Inf(-1), true}
		default:
			return p.errf("not a number: %q", s)
		}
	default:
		if f, n, ok := scanShortNum(p.b[p.i:]); ok {
			p.i += n
			*v = Value{f, true}
			return nil
		}
		n, err := p.number()
		if err != nil {
			return err
		}
		f, ok := parseShortNum(n)
		if !ok {
			var err error
			if f, err = strconv.ParseFloat(string(n), 64); err != nil {
				return p.errf("bad number %q", n)
			}
		}
		*v = Value{f, true}
	}
	return nil
}

// baseline is a cgroup as last recorded in the block: what a delta
// record (one with "m") changes.
type baseline struct {
	path   string
	pop    bool
	values []Value // not modified once recorded: each record gets its own
}

// blockState holds the baselines of the block being read: delta records
// refer to the same id's previous record in the same block (the host to
// the previous host).
type blockState struct {
	slab []Value // where the values of the next ticks go
	// lastCgroups: how many the last tick had (the next likely as many)
	lastCgroups int
	noDelta     bool // a line on its own (decodeTick): no deltas
	cg          map[uint64]baseline
	host        baseline
	hostSet     bool
}

func (s *blockState) reset() {
	if s.cg == nil {
		s.cg = map[uint64]baseline{}
	}
	clear(s.cg)
	s.hostSet = false
}

// maxDeltaSignals is how many positions a delta mask can name.
const maxDeltaSignals = 64

// cgroup parses one cgroup object; st (nil: no deltas allowed) holds
// the block's baselines, host says which list it belongs to.
func (p *parser) cgroup(c *Cgroup, st *blockState, host bool) error {
	*c = Cgroup{}
	var (
		vals           []Value
		mask           uint64
		delta, hasPath bool
		hasPop         bool
	)
	// Values come from a slab shared by the tick's cgroups.
	if len(p.slab) < 2*maxDeltaSignals {
		p.slab = make([]Value, 64*maxDeltaSignals)
	}
	vals = p.slab[:0:maxDeltaSignals]
	err := p.object(func(key string) error {
		switch key {
		case "id":
			n, err := p.number()
			if err != nil {
				return err
			}
			if c.ID, err = strconv.ParseUint(string(n), 10, 64); err != nil {
				return p.errf("bad id %q", n)
			}
		case "m":
			n, err := p.number()
			if err != nil {
				return err
			}
			if mask, err = strconv.ParseUint(string(n), 10, 64); err != nil {
				return p.errf("bad delta mask %q", n)
			}
			delta = true
		case "p":
			s, err := p.str()
			if err != nil {
				return err
			}
			c.Path, hasPath = s, true
		case "pop":
			switch {
			case p.literal("true"):
				c.Populated = true
			case p.literal("false"):
				c.Populated = false
			default:
				return p.errf("want true or false")
			}
			hasPop = true
		case "v":
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			var err error
			vals, err = p.values(vals)
			return err
		case "by":
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			return p.array(func() error {
				c.By = append(c.By, Preemptor{})
				return p.preemptor(&c.By[len(c.By)-1])
			})
		default:
			return p.skip(0)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !delta {
		if cap(vals) == maxDeltaSignals { // still in the slab
			p.slab = p.slab[len(vals):]
		}
		c.Values = vals[:len(vals):len(vals)]
		if len(vals) == 0 {
			c.Values = nil
		}
		if st != nil {
			st.set(c, host)
		}
		return nil
	}
	// A delta: the baseline, with the positions of mask's bits set to
	// vals in order.
	if st == nil || st.noDelta {
		return p.errf("delta record of cgroup %d outside a block", c.ID)
	}
	var b baseline
	ok := false
	if host {
		b, ok = st.host, st.hostSet
	} else {
		b, ok = st.cg[c.ID]
	}
	if !ok {
		return p.errf("delta record of cgroup %d without an earlier record in the block", c.ID)
	}
	if n := bits.OnesCount64(mask); n != len(vals) {
		return p.errf("delta record of cgroup %d: mask names %d values, %d given", c.ID, n, len(vals))
	}
	if !hasPath {
		c.Path = b.path
	}
	if !hasPop {
		c.Populated = b.pop
	}
	n := max(len(b.values), 64-bits.LeadingZeros64(mask))
	if n > 0 {
		skip := 0 // vals may be at the start of the slab: keep clear
		if cap(vals) == maxDeltaSignals {
			skip = len(vals)
		}
		if len(p.slab) < skip+n {
			p.slab = make([]Value, max(64*maxDeltaSignals, n))
			skip = 0
		}
		out := p.slab[skip : skip+n : skip+n]
		p.slab = p.slab[skip+n:]
		copy(out, b.values)
		clear(out[len(b.values):])
		j := 0
		for m := mask; m != 0; m &= m - 1 {
			out[bits.TrailingZeros64(m)] = vals[j]
			j++
		}
		for len(out) > 0 && !out[len(out)-1].Set {
			out = out[:len(out)-1]
		}
		if len(out) > 0 {
			c.Values = out
		}
	}
	st.set(c, host)
	return nil
}

func (s *blockState) set(c *Cgroup, host bool) {
	b := baseline{path: c.Path, pop: c.Populated, values: c.Values}
	if host {
		s.host, s.hostSet = b, true
		return
	}
	s.cg[c.ID] = b
}

// values parses an array of values, appending to vals.
func (p *parser) values(vals []Value) ([]Value, error) {
	if err := p.expect('['); err != nil {
		return vals, err
	}
	if p.peek() == ']' {
		p.i++
		return vals, nil
	}
	for {
		// The usual value, a number right there, without the general
		// path's calls.
		if p.i < len(p.b) {
			if c := p.b[p.i]; c >= '0' && c <= '9' || c == '-' {
				if f, n, ok := scanShortNum(p.b[p.i:]); ok {
					p.i += n
					vals = append(vals, Value{f, true})
					if p.i < len(p.b) && p.b[p.i] == ',' {
						p.i++
						continue
					}
					goto sep
				}
			}
		}
		vals = append(vals, Value{})
		if err := p.value(&vals[len(vals)-1]); err != nil {
			return vals, err
		}
	sep:
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return vals, nil
		default:
			return vals, p.errf("want ',' or ']'")
		}
	}
}

// preemptor parses [id, per second] (Cgroup.By).
func (p *parser) preemptor(o *Preemptor) error {
	*o = Preemptor{}
	n := 0
	err := p.array(func() error {
		switch n++; n {
		case 1:
			b, err := p.number()
			if err != nil {
				return err
			}
			if o.ID, err = strconv.ParseUint(string(b), 10, 64); err != nil {
				return p.errf("bad id %q", b)
			}
		case 2:
			var v Value
			if err := p.value(&v); err != nil {
				return err
			}
			if !v.Set {
				return p.errf("want a number")
			}
			o.PerSecond = v.V
		default:
			return p.errf("want [id, per second]")
		}
		return nil
	})
	if err == nil && n != 2 {
		return p.errf("want [id, per second]")
	}
	return err
}

// skip passes over any JSON value (an unknown key's).
func (p *parser) skip(depth int) error {
	if depth > 64 {
		return p.errf("nested too deeply")
	}
	switch c := p.peek(); c {
	case '{':
		return p.object(func(string) error { return p.skip(depth + 1) })
	case '[':
		return p.array(func() error { return p.skip(depth + 1) })
	case '"':
		_, err := p.str()
		return err
	case 't':
		if p.literal("true") {
			return nil
		}
	case 'f':
		if p.literal("false") {
			return nil
		}
	case 'n':
		if p.literal("null") {
			return nil
		}
	default:
		var v Value
		return p.value(&v)
	}
	return p.errf("unexpected %q", p.peek())
}

// decodeTick parses one line: the cgroups by hand, the small rest with
// encoding/json.
// A delta record is an error here: its meaning depends on the block
// (read blocks with a Reader).
func decodeTick(b []byte, t *Tick) error {
	st := blockState{noDelta: true}
	st.reset()
	return decodeTickIn(b, t, &st)
}

// decodeTickIn parses one line of a block whose baselines st holds.
func decodeTickIn(b []byte, t *Tick, st *blockState) error {
	p := parser{b: b, slab: st.slab}
	defer func() { st.slab = p.slab }()
	raw := func() ([]byte, error) {
		p.ws()
		start := p.i
		if err := p.skip(0); err != nil {
			return nil, err
		}
		return p.b[start:p.i], nil
	}
	err := p.object(func(key string) error {
		switch key {
		case "cg":
			t.Cgroups = t.Cgroups[:0] // a repeated key: the last wins, as in encoding/json
			if p.peek() == 'n' && p.literal("null") {
				t.Cgroups = nil
				return nil
			}
			if t.Cgroups == nil && st.lastCgroups > 0 {
				t.Cgroups = make([]Cgroup, 0, st.lastCgroups)
			}
			defer func() { st.lastCgroups = len(t.Cgroups) }()
			return p.array(func() error {
				t.Cgroups = append(t.Cgroups, Cgroup{})
				return p.cgroup(&t.Cgroups[len(t.Cgroups)-1], st, false)
			})
		case "host":
			if p.peek() == 'n' && p.literal("null") {
				t.Host = nil
				return nil
			}
			t.Host = new(Cgroup)
			return p.cgroup(t.Host, st, true)
		case "t":
			s, err := p.str()
			if err != nil {
				return err
			}
			if t.Time, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return p.errf("bad time %q", s)
			}
		case "seq":
			n, err := p.number()
			if err != nil {
				return err
			}
			if t.Seq, err = strconv.ParseUint(string(n), 10, 64); err != nil {
				return p.errf("bad seq %q", n)
			}
		default:
			r, err := raw()
			if err != nil {
				return err
			}
			var dst any
			switch key {
			case "meta":
				dst = &t.Meta
			case "ctl":
				dst = &t.Controllers
			case "rd":
				dst = &t.Reads
			case "fx":
				dst = &t.Effects
			case "act":
				dst = &t.Actions
			case "mem":
				dst = &t.Memory
			default:
				return nil // a newer governor's
			}
			if err := json.Unmarshal(r, dst); err != nil {
				return p.errf("%s: %v", key, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return p.end()
}

// parseShortNum reads the numbers a recording mostly holds (an optional
// minus, at most 15 significant digits, an optional fraction and
// exponent, all within what a float64 holds exactly) without strconv:
// the digits as an integer m below 2^53 and a power of ten 10^e with
// |e| <= 22 are both exact, so m*10^e or m/10^e rounds once, exactly as
// strconv.ParseFloat does (its own fast path). Anything else: ok false.
func parseShortNum(n []byte) (f float64, ok bool) {
	f, l, ok := scanShortNum(n)
	return f, ok && l == len(n)
}

// scanShortNum is parseShortNum of the number at the start of n, which
// must end there or before a byte that cannot be part of a number; it
// returns the number's length.
func scanShortNum(n []byte) (f float64, l int, ok bool) {
	f, l, ok = scanNum(n)
	if ok && l < len(n) {
		switch c := n[l]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			return 0, 0, false
		}
	}
	return f, l, ok
}

func scanNum(n []byte) (f float64, l int, ok bool) {
	i, neg := 0, false
	if i < len(n) && n[i] == '-' {
		neg = true
		i++
	}
	var m uint64
	digits, exp := 0, 0
	start := i
	for ; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
		if m == 0 && n[i] == '0' {
			continue // leading zeros are not significant
		}
		m = m*10 + uint64(n[i]-'0')
		digits++
	}
	if i == start || digits > 15 {
		return 0, 0, false
	}
	if i < len(n) && n[i] == '.' {
		i++
		fs := i
		for ; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
			if m == 0 && n[i] == '0' {
				exp--
				continue
			}
			m = m*10 + uint64(n[i]-'0')
			digits++
			exp--
		}
		if i == fs || digits > 15 {
			return 0, 0, false
		}
	}
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		eneg := false
		if i < len(n) && (n[i] == '+' || n[i] == '-') {
			eneg = n[i] == '-'
			i++
		}
		es, e := i, 0
		for ; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
			if e > 1000 {
				return 0, 0, false
			}
			e = e*10 + int(n[i]-'0')
		}
		if i == es {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	f = float64(m) // exact: at most 15 digits
	switch {
	case m == 0:
	case exp >= 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, 0, false
	}
	if neg {
		f = -f
	}
	return f, i, true
}
