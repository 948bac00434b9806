// Package nomad holds the Nomad example job; its test loads the job's
// policy and classifies the cgroups Nomad creates.
package nomad

import (
	"os"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/policies"
)

const jobFile = "governor.nomad.hcl"

// jobPolicy returns the data of the governor task's template: the policy
// the job renders into local/node.hcl.
func jobPolicy(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(jobFile)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, jobFile, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var found []string
	walk(f.Body.(*hclsyntax.Body), nil, func(path []string, b *hclsyntax.Block) {
		if len(path) != 4 || path[0] != "job governor" || path[2] != "task governor" || b.Type != "template" {
			return
		}
		attr, ok := b.Body.Attributes["data"]
		if !ok {
			return
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		found = append(found, v.AsString())
	})
	if len(found) != 1 {
		t.Fatalf("%s: %d templates with data in task \"governor\", want 1", jobFile, len(found))
	}
	return found[0]
}

func walk(body *hclsyntax.Body, path []string, visit func([]string, *hclsyntax.Block)) {
	for _, b := range body.Blocks {
		name := b.Type
		if len(b.Labels) > 0 {
			name += " " + b.Labels[0]
		}
		p := append(append([]string(nil), path...), name)
		visit(p, b)
		walk(b.Body, p, visit)
	}
}

// classOf is the name of the class the loop gives a cgroup path ("" for
// none).
func classOf(p *governor.Policy, path string) string {
	if i := p.ClassOf(path); i >= 0 {
		return p.Classes[i].Name
	}
	return ""
}

// TestNomadClasses: the example's classes matched
// nomad.slice/share.slice/svc-*.scope and batch-*.scope, names Nomad never
// makes, so nothing was ever classified. Nomad on cgroup v2 names a task's
// cgroup <alloc-id>.<task>.scope, under nomad.slice (1.3-1.6) or
// nomad.slice/{share,reserve}.slice (1.7+).
func TestNomadClasses(t *testing.T) {
	r := policies.LoadSource(jobFile+" (template data)", []byte(jobPolicy(t)))
	if r.Diags.HasErrors() {
		t.Fatal(r.Diags)
	}
	const alloc = "5fc97a36-1a3c-d7a6-bc1f-7e4c3b9d2a10"
	for path, want := range map[string]string{
		// Nomad 1.7+: share.slice, reserve.slice (resources.cores).
		"nomad.slice/share.slice/" + alloc + ".svc-web.scope":          "services",
		"nomad.slice/reserve.slice/" + alloc + ".svc-db.scope":         "services",
		"nomad.slice/share.slice/" + alloc + ".batch-etl.scope":        "batch",
		"nomad.slice/reserve.slice/" + alloc + ".batch-render-1.scope": "batch",
		// Nomad 1.3-1.6: directly under nomad.slice.
		"nomad.slice/" + alloc + ".svc-web.scope":   "services",
		"nomad.slice/" + alloc + ".batch-etl.scope": "batch",
		// The Nomad agent and other system services.
		"system.slice/nomad.service": "services",
		"system.slice/sshd.service":  "services",
		// This job's own tasks, and tasks following neither convention:
		// in no class, never touched.
		"nomad.slice/share.slice/" + alloc + ".governor.scope":       "",
		"nomad.slice/share.slice/" + alloc + ".admission-meta.scope": "",
		"nomad.slice/share.slice/" + alloc + ".web.scope":            "",
		// The task name is the suffix: a prefix in the job or task name
		// before a dot is not the task's prefix.
		"nomad.slice/share.slice/" + alloc + ".web.svc-x.scope":   "",
		"nomad.slice/share.slice/" + alloc + ".etl.batch-x.scope": "",
		// What the old example matched, which Nomad never creates.
		"nomad.slice/share.slice/svc-web.scope":   "",
		"nomad.slice/share.slice/batch-etl.scope": "",
		// The partitions themselves, and cgroup v1-style names.
		"nomad.slice":                         "",
		"nomad.slice/share.slice":             "",
		"nomad/share/" + alloc + ".batch-etl": "",
	} {
		if got := classOf(r.Policy, path); got != want {
			t.Errorf("%s: class %q, want %q", path, got, want)
		}
	}
}
