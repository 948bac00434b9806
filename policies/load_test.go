package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tinyPolicy = `class "batch" { match = ["batch.slice"] }`

// TestPermissions checks that Load refuses policy files and directories that
// someone other than root could change, and that AllowInsecure skips that.
func TestPermissions(t *testing.T) {
	root := os.Geteuid() == 0
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	for _, f := range []string{good, bad} {
		if err := os.WriteFile(f, []byte(tinyPolicy), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(bad, 0o666); err != nil {
		t.Fatal(err)
	}

	check := func(name string, paths []string, opts Options, wantErr string) {
		t.Helper()
		r := Load(paths, opts)
		if wantErr == "" {
			if r.Diags.HasErrors() || r.Policy == nil {
				t.Errorf("%s: unexpected errors: %v", name, r.Diags)
			}
			return
		}
		if !r.Diags.HasErrors() || r.Policy != nil || !strings.Contains(r.Diags.Error(), wantErr) {
			t.Errorf("%s: want an error containing %q, got %v", name, wantErr, r.Diags)
		}
	}

	check("world-writable file", []string{bad}, Options{}, "bad.hcl is writable by group or others (mode 0666)")
	check("world-writable file, insecure allowed", []string{bad}, Options{AllowInsecure: true}, "")
	check("directory with a world-writable file", []string{dir}, Options{}, "bad.hcl is writable by group or others")

	link := filepath.Join(t.TempDir(), "link.hcl")
	if err := os.Symlink(bad, link); err != nil {
		t.Fatal(err)
	}
	check("symlink to a world-writable file", []string{link}, Options{}, "writable by group or others")

	if !root {
		check("file not owned by root", []string{good}, Options{}, "is not owned by root")
		t.Skip("the remaining checks need root to create root-owned files")
	}
	check("root-owned 0644 file", []string{good}, Options{}, "")
	goodLink := filepath.Join(t.TempDir(), "good-link.hcl")
	if err := os.Symlink(good, goodLink); err != nil {
		t.Fatal(err)
	}
	check("symlink to a root-owned file", []string{goodLink}, Options{}, "")

	if err := os.Chown(good, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	check("file owned by uid 1000", []string{good}, Options{}, "is not owned by root (owner uid 1000)")
	if err := os.Chown(good, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	check("secure directory", []string{dir}, Options{}, "")
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	check("world-writable directory", []string{dir}, Options{}, "directory")
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	check("group-writable directory", []string{dir}, Options{}, "mode 0775")
}
