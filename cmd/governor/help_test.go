package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// Every subcommand's help: -h and --help print the same text on stdout and
// exit 0; the text is the golden file's.
func TestHelpGolden(t *testing.T) {
	for _, cmd := range []string{"run", "validate", "status", "top", "explain", "admission", "replay", "report", "export"} {
		t.Run(cmd, func(t *testing.T) {
			var texts []string
			for _, h := range []string{"-h", "--help", "-help"} {
				var out, errOut bytes.Buffer
				if code := dispatch([]string{cmd, h}, &out, &errOut); code != 0 || errOut.Len() != 0 {
					t.Errorf("%s %s: exit %d, stderr %q", cmd, h, code, errOut.String())
				}
				texts = append(texts, out.String())
			}
			if texts[0] != texts[1] || texts[1] != texts[2] {
				t.Errorf("-h, --help and -help differ:\n%s\n---\n%s\n---\n%s", texts[0], texts[1], texts[2])
			}
			var out, errOut bytes.Buffer
			if code := dispatch([]string{"help", cmd}, &out, &errOut); code != 0 || out.String() != texts[0] {
				t.Errorf("governor help %s: exit %d, differs from --help", cmd, code)
			}
			golden(t, filepath.Join("help", cmd+".txt"), texts[0])
			// The README's flag spelling, and no stray placeholder from a
			// backquoted word in a flag's text.
			if !strings.Contains(texts[0], "\n  --") {
				t.Errorf("flags not listed with --:\n%s", texts[0])
			}
			if strings.Contains(texts[0], " run\n") || strings.Contains(texts[0], " string\n") || strings.Contains(texts[0], " value\n") {
				t.Errorf("a flag without a named argument:\n%s", texts[0])
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"--help"}, &out, &errOut); code != 0 {
		t.Errorf("governor --help: exit %d", code)
	}
	golden(t, filepath.Join("help", "governor.txt"), out.String())
	for _, want := range []string{"--socket PATH", "--interval DURATION", "explain [--socket PATH] [--json]", "status [--socket PATH] [--json] [-n N]", "top [--socket PATH] [--interval DURATION] [-n N]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("governor --help lacks %q", want)
		}
	}
}

// The README lists every client flag the commands accept.
func TestReadmeListsClientFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"governor status [--socket PATH] [--json] [-n N]", "governor top [--socket PATH] [--interval DURATION] [-n N]",
		"governor explain [--socket PATH] [--json] CGROUP", "governor admission [--socket PATH] [--json]"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("README lacks %q", want)
		}
	}
}

// Flags may follow arguments: validate DIR --strict-perms applies the
// ownership check instead of reading "--strict-perms" as a file name.
func TestInterspersedFlags(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(p, []byte("class \"batch\" {\n  match = [\"batch.slice/*\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"validate", p}, &out, &errOut); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	code := dispatch([]string{"validate", p, "--strict-perms"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "writable by group or others") || strings.Contains(errOut.String(), "--strict-perms:") {
		t.Errorf("validate FILE --strict-perms: exit %d\n%s", code, errOut.String())
	}
	// "--" ends the flags: what follows is a file name.
	errOut.Reset()
	if code := dispatch([]string{"validate", "--", "--strict-perms"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--strict-perms") {
		t.Errorf("validate -- --strict-perms: exit %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := dispatch([]string{"explain", "batch.slice", "--socket", filepath.Join(dir, "none.sock")}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "none.sock") {
		t.Errorf("explain CGROUP --socket: exit %d\n%s", code, errOut.String())
	}
}

// A client that cannot reach the daemon says which socket it tried and how
// to name another.
func TestClientUnreachableHint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	for _, cmd := range []string{"status", "explain", "admission"} {
		args := []string{cmd, "--socket", sock}
		if cmd == "explain" {
			args = append(args, "batch.slice")
		}
		var out, errOut bytes.Buffer
		dispatch(args, &out, &errOut)
		for _, want := range []string{"cannot reach the control socket " + sock, "--socket PATH", "--state-dir DIR listens on DIR/control.sock"} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%s: lacks %q:\n%s", cmd, want, errOut.String())
			}
		}
	}
}
