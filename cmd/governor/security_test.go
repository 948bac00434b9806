package main

import (
	"bytes"
	"context"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor/metrics"
)

// The CLI path of the policy ownership check: `governor run --config` and
// `governor validate --strict-perms` refuse policy files and directories that are not
// owned by root or are writable by group or others, before touching any
// cgroup; --allow-insecure-config (tests only) lifts that.
func TestRunRefusesInsecurePolicyFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (files must be owned by root, and chown)")
	}
	const policy = "class \"batch\" {\n  match = [\"batch.slice/*\"]\n}\n"
	write := func(t *testing.T, dir string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, "p.hcl")
		if err := os.WriteFile(p, []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noRoot := filepath.Join(t.TempDir(), "no-such-cgroup-root")
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := dispatch(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
		dir  os.FileMode // mode of the directory given to --config (0: pass the file)
		want string
	}{
		{"group writable", 0o664, 0, 0, "is writable by group or others"},
		{"world writable", 0o646, 0, 0, "is writable by group or others"},
		{"not owned by root", 0o644, 1000, 0, "is not owned by root"},
		{"directory world writable", 0o644, 0, 0o777, "is writable by group or others"},
		{"file in directory not owned by root", 0o644, 1000, 0o755, "is not owned by root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := write(t, dir, tc.mode, tc.uid)
			target := p
			if tc.dir != 0 {
				if err := os.Chmod(dir, tc.dir); err != nil {
					t.Fatal(err)
				}
				target = dir
			}
			code, out := run("run", "--config", target, "--dry-run", "--no-bpf", "--state-dir", t.TempDir(), "--cgroup-root", noRoot)
			if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "Insecure policy") {
				t.Errorf("run: exit %d, want 1 with %q:\n%s", code, tc.want, out)
			}
			if strings.Contains(out, "probe cgroup2") || strings.Contains(out, "no cgroup v2") {
				t.Errorf("run went on to the cgroup hierarchy with an insecure policy:\n%s", out)
			}
			// validate checks content only unless --strict-perms (it runs in CI
			// as non-root on checked-out files).
			if code, out := run("validate", "--strict-perms", target); code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("validate --strict-perms: exit %d, want an error with %q:\n%s", code, tc.want, out)
			}
			// The escape hatch accepts it: the run fails later, at the
			// (missing) cgroup root, not at the policy.
			code, out = run("run", "--config", target, "--allow-insecure-config", "--dry-run", "--no-bpf", "--state-dir", t.TempDir(), "--cgroup-root", noRoot)
			if code != 1 || strings.Contains(out, "Insecure policy") || !strings.Contains(out, noRoot) {
				t.Errorf("--allow-insecure-config: exit %d:\n%s", code, out)
			}
		})
	}
	t.Run("symlink to an insecure file", func(t *testing.T) {
		p := write(t, t.TempDir(), 0o666, 0)
		for _, dir := range []bool{false, true} {
			d := t.TempDir()
			link := filepath.Join(d, "link.hcl")
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			target := link
			if dir {
				target = d
			}
			code, out := run("run", "--config", target, "--dry-run", "--no-bpf", "--state-dir", t.TempDir(), "--cgroup-root", noRoot)
			if code != 1 || !strings.Contains(out, "Insecure policy") {
				t.Errorf("run --config %s (symlink to a 0666 file): exit %d:\n%s", target, code, out)
			}
		}
	})
	t.Run("root-owned 0644 accepted", func(t *testing.T) {
		p := write(t, t.TempDir(), 0o644, 0)
		code, out := run("run", "--config", p, "--dry-run", "--no-bpf", "--state-dir", t.TempDir(), "--cgroup-root", noRoot)
		if code != 1 || strings.Contains(out, "Insecure policy") || !strings.Contains(out, noRoot) {
			t.Errorf("exit %d, want a failure at the cgroup root only:\n%s", code, out)
		}
	})
}

// Nothing listens beyond loopback unless configured: the default metrics
// address is a loopback one, the control socket is root-only unless a group
// is named (its mode and peer checks: governor/control), and a unix metrics
// socket is not accessible to others.
func TestListenDefaultsStayLocal(t *testing.T) {
	var o opsFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(o.metricsAddr)
	if err != nil {
		t.Fatalf("default --metrics-addr %q: %v", o.metricsAddr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("default --metrics-addr %q is not a loopback address", o.metricsAddr)
	}
	if o.controlGroup != "" {
		t.Errorf("default --control-group %q: the control socket must default to root only", o.controlGroup)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "m", "metrics.sock")
	if _, err := metrics.Serve(ctx, "unix:"+sock, http.NotFoundHandler(), hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("unix metrics socket mode %v is accessible to others", fi.Mode().Perm())
	}
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", http.NotFoundHandler(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if ta, ok := addr.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		t.Errorf("metrics on 127.0.0.1:0 listen on %v", addr)
	}
}
