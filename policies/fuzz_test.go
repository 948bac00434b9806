package policies

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoadSource feeds arbitrary text to the loader: it must never panic,
// must produce a policy exactly when there is no error, every error must
// point into the source, and the diagnostics must always print.
func FuzzLoadSource(f *testing.F) {
	addPolicySeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		r := LoadSource("fuzz.hcl", src)
		if r.Diags.HasErrors() != (r.Policy == nil) {
			t.Fatalf("errors %v but policy %v", r.Diags.HasErrors(), r.Policy != nil)
		}
		for _, d := range r.Diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Fatalf("error without a source range: %s: %s", d.Summary, d.Detail)
			}
		}
		if err := r.WriteDiagnostics(io.Discard, false); err != nil {
			t.Fatal(err)
		}
	})
}

// addPolicySeeds seeds a policy fuzz target with every policy the
// repository has: the test fixtures, good and broken, the built-in default
// and the examples.
func addPolicySeeds(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.hcl", "testdata/broken/*.hcl", "default.hcl", "../examples/*.hcl"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
}
