package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoFunctionsOrEnvironment: a policy can neither read files nor the
// environment. Every function name HCL tools commonly offer, and variable
// references, are refused with a diagnostic wherever an expression can
// appear: a scalar attribute, a list element, a template interpolation.
func TestNoFunctionsOrEnvironment(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("1G"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOVERNOR_TEST_SECRET", "batch.slice/**")
	calls := []string{
		fmt.Sprintf("file(%q)", secret), fmt.Sprintf("filebase64(%q)", secret), fmt.Sprintf("fileexists(%q)", secret),
		fmt.Sprintf("templatefile(%q, {})", secret), fmt.Sprintf("fileset(%q, \"*\")", filepath.Dir(secret)),
		`env("GOVERNOR_TEST_SECRET")`, `getenv("GOVERNOR_TEST_SECRET")`, `pathexpand("~")`, `abspath(".")`,
		`upper("1g")`, `trimspace(" 1G ")`,
	}
	vars := []string{"env.GOVERNOR_TEST_SECRET", "var.secret", "local.x", "path.module", "self.x", "GOVERNOR_TEST_SECRET"}
	header := "class \"web\" {\n  match = [\"system.slice/web.service\"]\n  protected = true\n}\n"
	for _, e := range append(calls, vars...) {
		isCall := strings.Contains(e, "(")
		want := "Policy files have no variables"
		if isCall {
			want = "Policy files cannot call functions"
		}
		for name, src := range map[string]string{
			"scalar":   header + "protect \"p\" {\n  target = \"web\"\n  memory_low = " + e + "\n}\n",
			"list":     "class \"x\" {\n  match = [" + e + "]\n}\n",
			"template": "class \"x\" {\n  match = [\"batch.slice/${" + e + "}\"]\n}\n",
		} {
			r := LoadSource("t.hcl", []byte(src))
			if r.Policy != nil || !strings.Contains(r.Diags.Error(), want) {
				t.Errorf("%s in %s: policy %v, diagnostics %q; want %q", e, name, r.Policy != nil, r.Diags.Error(), want)
			}
			if strings.Contains(r.Diags.Error(), "batch.slice/**") && !strings.Contains(src, "batch.slice/**") {
				t.Errorf("%s in %s: the environment leaked into a diagnostic: %s", e, name, r.Diags.Error())
			}
		}
	}
}
