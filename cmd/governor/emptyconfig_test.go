package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/policies"
)

// The shipped unit runs `governor run --config /etc/governor`: with no
// *.hcl there the built-in default policy runs, and the log says so; a
// directory with a policy, or an empty one next to a file, runs that.
func TestEmptyConfigDirRunsDefault(t *testing.T) {
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "README"), []byte("not a policy"), 0o644)
	var logs strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logs})
	p, err := loadPolicy(runFlags{configs: stringList{empty}, allowInsecure: true}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def := policies.Default()
	if len(p.Classes) == 0 || len(p.Classes) != len(def.Classes) || p.Classes[0].Name != def.Classes[0].Name {
		t.Errorf("empty config dir: %d classes, want the default's %d", len(p.Classes), len(def.Classes))
	}
	if !strings.Contains(logs.String(), "using the built-in default policy") {
		t.Errorf("not logged:\n%s", logs.String())
	}

	withPolicy := t.TempDir()
	os.WriteFile(filepath.Join(withPolicy, "one.hcl"), []byte(`class "only" { match = ["x.slice/*"] }`+"\n"), 0o644)
	for _, cfg := range []stringList{{withPolicy}, {empty, withPolicy}} {
		p, err := loadPolicy(runFlags{configs: cfg, allowInsecure: true}, hclog.NewNullLogger(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Classes) != 1 || p.Classes[0].Name != "only" {
			t.Errorf("%v: got %d classes, want the file's one", cfg, len(p.Classes))
		}
	}
}
