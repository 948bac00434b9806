package policies

import (
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

func TestAdmissionBlock(t *testing.T) {
	src := `
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
admission {
  when {
    class  = "web"
    signal = "memory.some.avg10"
    above  = "10%"
    for    = "10s"
  }
  when {
    host   = true
    signal = "cpu.some.avg10"
    above  = "20%"
  }
  recover {
    class  = "web"
    signal = "memory.some.avg10"
    below  = "5%"
    for    = "30s"
  }
}
`
	r := LoadSource("a.hcl", []byte(src))
	if r.Diags.HasErrors() {
		t.Fatal(r.Diags.Error())
	}
	a := r.Policy.Admission
	if a == nil || len(a.Trigger.When) != 2 || len(a.Trigger.Recover) != 1 {
		t.Fatalf("admission: %+v", a)
	}
	w := a.Trigger.When[0]
	if w.Scope != governor.ScopeClass || w.Class != "web" || w.Signal != governor.MemorySomeAvg10 || w.Op != governor.Above || w.Value != 10 || w.For != 10*time.Second {
		t.Errorf("when[0]: %+v", w)
	}
	if a.Trigger.When[1].Scope != governor.ScopeHost {
		t.Errorf("when[1]: %+v", a.Trigger.When[1])
	}
	if !strings.HasPrefix(a.Origin, "a.hcl:6") {
		t.Errorf("origin %q", a.Origin)
	}
	if r := LoadSource("none.hcl", []byte(`class "x" { match = ["x"] }`)); r.Policy.Admission != nil {
		t.Errorf("no admission block must compile to nil")
	}
}

func TestAdmissionBlockErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"admission {\n}\n", "Missing when block"},
		{"admission {\n  when {\n    signal = \"cpu.some.avg10\"\n    above = \"1%\"\n  }\n}\n", "Missing scope"},
		{"admission {\n  when {\n    host = true\n    signal = \"cpu.some.avg10\"\n    above = \"1%\"\n  }\n}\nadmission {\n  when {\n    host = true\n    signal = \"cpu.some.avg10\"\n    above = \"1%\"\n  }\n}\n", "Duplicate admission block"},
		{"admission {\n  when {\n    class = \"nope\"\n    signal = \"cpu.some.avg10\"\n    above = \"1%\"\n  }\n}\n", "nope"},
		{"admission {\n  target = \"x\"\n  when {\n    host = true\n    signal = \"cpu.some.avg10\"\n    above = \"1%\"\n  }\n}\n", "target"},
	} {
		r := LoadSource("bad.hcl", []byte(tc.src))
		if !r.Diags.HasErrors() || !strings.Contains(r.Diags.Error(), tc.want) {
			t.Errorf("%q: want error containing %q, got %v", tc.src, tc.want, r.Diags)
		}
	}
}
