package policies

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// hclSnippets returns the ```hcl blocks of a Markdown file with the line
// each starts on.
func hclSnippets(t *testing.T, path string) map[int]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	var cur []string
	start := -1
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case start < 0 && strings.TrimSpace(line) == "```hcl":
			start, cur = i+2, nil
		case start >= 0 && strings.TrimSpace(line) == "```":
			out[start] = strings.Join(cur, "\n") + "\n"
			start = -1
		case start >= 0:
			cur = append(cur, line)
		}
	}
	return out
}

// TestDocSnippetsParse keeps the documentation's examples valid HCL: a
// snippet may be a fragment (naming classes defined elsewhere) but must
// parse, and one that defines every class it uses must also compile.
func TestDocSnippetsParse(t *testing.T) {
	for _, doc := range []string{"../README.md", "REFERENCE.md"} {
		snippets := hclSnippets(t, doc)
		if len(snippets) == 0 {
			t.Errorf("%s: no hcl snippets found", doc)
		}
		for line, src := range snippets {
			name := fmt.Sprintf("%s:%d", doc, line)
			p := hclparse.NewParser()
			if _, diags := p.ParseHCL([]byte(src), name); diags.HasErrors() {
				t.Errorf("%s: snippet does not parse: %s", name, diags.Error())
				continue
			}
			if strings.Contains(src, "class \"") && !strings.Contains(src, "...") {
				if r := LoadSource(name, []byte(src)); r.Diags.HasErrors() {
					t.Errorf("%s: self-contained snippet does not compile: %s", name, r.Diags.Error())
				}
			}
		}
	}
}
