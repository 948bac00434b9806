package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// expectation is a "# want: SUBSTRING" marker in a broken policy: an error
// diagnostic must start on that marker's line and contain SUBSTRING.
type expectation struct {
	line int
	text string
}

func expectations(src []byte) []expectation {
	var out []expectation
	for i, l := range strings.Split(string(src), "\n") {
		if _, want, ok := strings.Cut(l, "# want: "); ok {
			out = append(out, expectation{i + 1, strings.TrimSpace(want)})
		}
	}
	return out
}

// TestBroken loads every policy in testdata/broken. Each must fail with a
// diagnostic on the marked line containing the marked text, the text writer
// must show "on FILE line N" with that text, and every error must carry a
// source range.
func TestBroken(t *testing.T) {
	paths, err := filepath.Glob("testdata/broken/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no broken policies: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := expectations(src)
			if len(want) == 0 {
				t.Fatalf("%s has no '# want:' marker", p)
			}
			name := "broken/" + filepath.Base(p)
			r := LoadSource(name, src)
			if !r.Diags.HasErrors() {
				t.Fatalf("no error; diags: %v", r.Diags)
			}
			if r.Policy != nil {
				t.Errorf("Policy is set despite errors")
			}
			var out strings.Builder
			if err := r.WriteDiagnostics(&out, false); err != nil {
				t.Fatal(err)
			}
			for _, d := range r.Diags {
				if d.Severity == hcl.DiagError && d.Subject == nil {
					t.Errorf("error without a source range: %s: %s", d.Summary, d.Detail)
				}
			}
			for _, w := range want {
				found := false
				for _, d := range r.Diags {
					if d.Subject != nil && d.Subject.Start.Line == w.line &&
						strings.Contains(d.Summary+": "+d.Detail, w.text) {
						found = true
					}
				}
				if !found {
					t.Errorf("want an error on line %d containing %q; got:\n%s", w.line, w.text, out.String())
				}
				if loc := fmt.Sprintf("on %s line %d", name, w.line); !strings.Contains(out.String(), loc) {
					t.Errorf("text output lacks %q:\n%s", loc, out.String())
				}
			}
		})
	}
}
