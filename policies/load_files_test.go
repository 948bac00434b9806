//go:build unix

package policies

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load and fails the test if it has not returned within a
// minute (a blocked open never returns at all).
func loadWithin(t *testing.T, paths []string, opts Options) *Result {
	t.Helper()
	done := make(chan *Result, 1)
	go func() { done <- Load(paths, opts) }()
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Fatalf("Load(%q) blocked for a minute", paths)
		return nil
	}
}

// policyDir makes a root-owned 0755 directory (the test runs as root, or
// with AllowInsecure where it is not about ownership).
func policyDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantRefused(t *testing.T, what string, r *Result, want string) {
	t.Helper()
	if r.Policy != nil || !strings.Contains(r.Diags.Error(), want) {
		t.Errorf("%s: policy %v, diagnostics %q; want an error containing %q", what, r.Policy != nil, r.Diags.Error(), want)
	}
}

// TestFIFOPolicy: a FIFO named *.hcl in the policy directory (or named
// itself) used to block Load forever in open(2), and with it a reload. It
// is refused without being opened.
func TestFIFOPolicy(t *testing.T) {
	dir := policyDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a.hcl"), []byte(tinyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "b.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{AllowInsecure: os.Geteuid() != 0}
	wantRefused(t, "FIFO in a directory", loadWithin(t, []string{dir}, opts), "b.hcl is not a regular file but a named pipe (FIFO)")
	wantRefused(t, "FIFO named", loadWithin(t, []string{fifo}, opts), "b.hcl is not a regular file or a directory but a named pipe (FIFO)")
	link := filepath.Join(policyDir(t), "c.hcl")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "symlink to a FIFO", loadWithin(t, []string{filepath.Dir(link)}, opts), "(a symlink to "+fifo+") is not a regular file but a named pipe")
	wantRefused(t, "/dev/null", loadWithin(t, []string{"/dev/null"}, opts), "is not a regular file or a directory but a character device")
}

// TestSymlinkToSecret: a policy path that is a symlink to a root-owned
// file that is no policy (/etc/shadow: root, 0640) used to pass the owner
// check and have its lines printed in validate's diagnostics and the
// daemon's log. A symlink must lead to a *.hcl file; what is refused is
// never read, so nothing of it is printed.
func TestSymlinkToSecret(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the secret must pass the ownership check")
	}
	secret := filepath.Join(policyDir(t), "shadow")
	const line = "root:$6$TOPSECRETHASH:19000:0:99999:7:::\n"
	if err := os.WriteFile(secret, []byte(line), 0o640); err != nil {
		t.Fatal(err)
	}
	dir := policyDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a.hcl"), []byte(tinyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(dir, "evil.hcl")
	if err := os.Symlink(secret, evil); err != nil {
		t.Fatal(err)
	}
	for _, paths := range [][]string{{dir}, {evil}} {
		r := loadWithin(t, paths, Options{})
		wantRefused(t, "symlink to a secret", r, "evil.hcl is a symlink to "+secret+", which is not a *.hcl file")
		var out bytes.Buffer
		if err := r.WriteDiagnostics(&out, false); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "TOPSECRET") {
			t.Errorf("the secret's contents are printed:\n%s", out.String())
		}
	}
	// The symlink is to a *.hcl file, but one someone else could write.
	other := filepath.Join(policyDir(t), "other.hcl")
	if err := os.WriteFile(other, []byte(tinyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(evil); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, evil); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "symlink to a user's file", loadWithin(t, []string{dir}, Options{}), "evil.hcl (a symlink to "+other+") is not owned by root (owner uid 1000)")
}

// TestConfigMapLayout: a Kubernetes ConfigMap volume is a directory of
// symlinks through "..data" to a timestamped directory; it loads, and the
// ".." entries are not read as policies.
func TestConfigMapLayout(t *testing.T) {
	dir := policyDir(t)
	ts := filepath.Join(dir, "..2026_12_06_07_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "batch.hcl"), []byte(tinyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file in the timestamped directory that no top-level link names.
	if err := os.WriteFile(filepath.Join(ts, "broken.hcl"), []byte("nonsense {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/batch.hcl", filepath.Join(dir, "batch.hcl")); err != nil {
		t.Fatal(err)
	}
	r := loadWithin(t, []string{dir}, Options{AllowInsecure: os.Geteuid() != 0})
	if r.Policy == nil || r.Diags.HasErrors() || len(r.Policy.Classes) != 1 {
		t.Fatalf("ConfigMap layout: %v", r.Diags)
	}
	// A symlink loop is an error, not a hang.
	loop := filepath.Join(dir, "loop.hcl")
	if err := os.Symlink("loop.hcl", loop); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "symlink loop", loadWithin(t, []string{dir}, Options{AllowInsecure: true}), "loop.hcl is a symlink that does not resolve")
}
