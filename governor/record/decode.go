package record

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
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
		return p.cgroup(&out[len(out)-1])
	}); err != nil {
		return err
	}
	*l = out
	return p.end()
}

// UnmarshalJSON parses one cgroup object.
func (c *Cgroup) UnmarshalJSON(b []byte) error {
	p := parser{b: b}
	if err := p.cgroup(c); err != nil {
		return err
	}
	return p.end()
}

type parser struct {
	b []byte
	i int
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
		key, err := p.str()
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
			if plain {
				return string(p.b[start+1 : p.i-1]), nil
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

func (p *parser) cgroup(c *Cgroup) error {
	vals := c.Values[:0]
	*c = Cgroup{}
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
		case "p":
			s, err := p.str()
			if err != nil {
				return err
			}
			c.Path = s
		case "pop":
			switch {
			case p.literal("true"):
				c.Populated = true
			case p.literal("false"):
				c.Populated = false
			default:
				return p.errf("want true or false")
			}
		case "v":
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			return p.array(func() error {
				vals = append(vals, Value{})
				return p.value(&vals[len(vals)-1])
			})
		default:
			return p.skip(0)
		}
		return nil
	})
	c.Values = vals
	if len(vals) == 0 {
		c.Values = nil
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
func decodeTick(b []byte, t *Tick) error {
	p := parser{b: b}
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
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			return p.array(func() error {
				t.Cgroups = append(t.Cgroups, Cgroup{})
				return p.cgroup(&t.Cgroups[len(t.Cgroups)-1])
			})
		case "host":
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			t.Host = new(Cgroup)
			return p.cgroup(t.Host)
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
		return 0, false
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
			return 0, false
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
				return 0, false
			}
			e = e*10 + int(n[i]-'0')
		}
		if i == es {
			return 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(n) {
		return 0, false
	}
	f = float64(m) // exact: at most 15 digits
	switch {
	case m == 0:
	case exp >= 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}
