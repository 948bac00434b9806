package metrics

import (
	"bytes"
	"compress/gzip"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
)

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

type famID int

const (
	gaugeType   = "gauge"
	counterType = "counter"
)

// family is one metric family the state collector writes.
type family struct {
	name, typ, help string
	labels          []string
}

// expo builds one scrape's exposition: the registry's families go straight
// to out; the state's series, which come cgroup by cgroup, are appended to
// their family's buffer and joined to out, family by family, by finish.
// Buffers are kept between scrapes (expoPool), so a scrape in steady state
// allocates next to nothing for them.
type expo struct {
	out bytes.Buffer
	fam [nFamilies][]byte
}

var (
	expoPool = sync.Pool{New: func() any { return new(expo) }}
	gzipPool = sync.Pool{New: func() any {
		// Speed over size: the exposition is text that compresses well
		// even so, and a scrape's CPU is what the daemon pays.
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}}
)

func (e *expo) reset() {
	e.out.Reset()
	for i := range e.fam {
		e.fam[i] = e.fam[i][:0]
	}
}

// add appends one sample of family f; values go with families[f].labels.
func (e *expo) add(f famID, v float64, values ...string) {
	fam := &families[f]
	b := append(e.fam[f], fam.name...)
	if len(values) > 0 {
		b = append(b, '{')
		for i, val := range values {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, fam.labels[i]...)
			b = append(b, '=', '"')
			b = appendLabelValue(b, val)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendValue(b, v)
	e.fam[f] = append(b, '\n')
}

// finish writes every family with samples, with its HELP and TYPE lines.
func (e *expo) finish() {
	for i := range e.fam {
		if len(e.fam[i]) == 0 {
			continue
		}
		f := &families[i]
		e.out.WriteString("# HELP ")
		e.out.WriteString(f.name)
		e.out.WriteByte(' ')
		e.out.WriteString(helpEscaper.Replace(f.help))
		e.out.WriteString("\n# TYPE ")
		e.out.WriteString(f.name)
		e.out.WriteByte(' ')
		e.out.WriteString(f.typ)
		e.out.WriteByte('\n')
		e.out.Write(e.fam[i])
	}
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

// appendLabelValue appends v escaped for the text format (backslash, double
// quote, newline); bytes that are not UTF-8 (a cgroup's name can hold any)
// become U+FFFD, as the format requires UTF-8.
func appendLabelValue(b []byte, v string) []byte {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendValue formats a sample value as Prometheus's own encoder does.
func appendValue(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(h, ",") {
			enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.TrimSpace(enc) != "gzip" {
				continue
			}
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}
