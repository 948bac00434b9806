// Package deb holds the Debian packaging (build.sh and the maintainer
// scripts); its test builds the package and inspects it.
package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestPackage builds the .deb from the real binary and checks its control
// fields, conffiles, file list, the unit's paths, the maintainer scripts
// (syntax, and what each does on which action), the packaged binary
// runs, and lintian (when installed) reports no error or warning.
func TestPackage(t *testing.T) {
	need(t, "dpkg-deb", "dpkg")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "governor")
	run(t, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags", "-X main.version=v1.2.3-4-gabcdef0", "-o", bin, "../../cmd/governor")
	out := filepath.Join(tmp, "out")
	deb := strings.TrimSpace(run(t, []string{"GOARCH=" + runtime.GOARCH, "SOURCE_DATE_EPOCH=1796544000"}, "./build.sh", bin, "v1.2.3-4-gabcdef0", out))
	arch := strings.TrimSpace(run(t, nil, "dpkg", "--print-architecture"))
	if filepath.Base(deb) != "governor_1.2.3+git4.gabcdef0_"+arch+".deb" {
		t.Errorf("package %s", deb)
	}

	for field, want := range map[string]string{
		"Package":      "governor",
		"Version":      "1.2.3+git4.gabcdef0",
		"Architecture": arch,
		"Section":      "admin",
	} {
		if got := strings.TrimSpace(run(t, nil, "dpkg-deb", "--field", deb, field)); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if got := run(t, nil, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/governor/default.hcl\n" {
		t.Errorf("conffiles %q", got)
	}

	contents := run(t, nil, "dpkg-deb", "--contents", deb)
	files := map[string]string{} // path -> mode and owner
	for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
		f := strings.Fields(line)
		files[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/bin/governor":                              "-rwxr-xr-x root/root",
		"/lib/systemd/system/governor.service":           "-rw-r--r-- root/root",
		"/etc/governor/default.hcl":                      "-rw-r--r-- root/root",
		"/usr/share/governor/10-before-systemd-253.conf": "-rw-r--r-- root/root",
		"/usr/share/doc/governor/OPERATIONS.md.gz":       "-rw-r--r-- root/root",
		"/usr/share/doc/governor/copyright":              "-rw-r--r-- root/root",
		"/usr/share/doc/governor/changelog.gz":           "-rw-r--r-- root/root",
		"/usr/share/man/man8/governor.8.gz":              "-rw-r--r-- root/root",
		"/usr/share/lintian/overrides/governor":          "-rw-r--r-- root/root",
		"/":                                              "drwxr-xr-x root/root",
	} {
		if got := files[path]; got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}

	x := filepath.Join(tmp, "x")
	run(t, nil, "dpkg-deb", "--raw-extract", deb, x)
	unit, err := os.ReadFile(filepath.Join(x, "lib/systemd/system/governor.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/governor run --log-json --config /etc/governor $GOVERNOR_ARGS\n") ||
		strings.Contains(string(unit), "/usr/local") {
		t.Errorf("unit:\n%s", unit)
	}
	if got := run(t, nil, filepath.Join(x, "usr/bin/governor"), "version"); !strings.Contains(got, "v1.2.3-4-gabcdef0") {
		t.Errorf("packaged binary: version %q", got)
	}

	// What each maintainer script does on which action.
	script := func(name string) string {
		b, err := os.ReadFile(filepath.Join(x, "DEBIAN", name))
		if err != nil {
			t.Fatal(err)
		}
		run(t, nil, "sh", "-n", filepath.Join(x, "DEBIAN", name))
		return string(b)
	}
	for name, wants := range map[string][]string{
		"postinst": {"configure |", "daemon-reload", "deb-systemd-helper enable", "deb-systemd-invoke restart"},
		"prerm":    {"remove |", "deb-systemd-invoke stop governor.service"},
		"postrm":   {"purge)", "deb-systemd-helper purge governor.service", "rm -rf /run/governor /var/lib/governor", "10-before-systemd-253.conf"},
	} {
		s := script(name)
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian not installed: not run")
		return
	}
	// lintian exits non-zero on errors; warnings are printed as W:.
	lint, err := exec.Command("lintian", "--fail-on", "error,warning", deb).CombinedOutput()
	var bad []string
	for _, l := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			bad = append(bad, l)
		}
	}
	if err != nil || len(bad) > 0 {
		t.Errorf("lintian: %v\n%s", err, strings.Join(slices.Compact(bad), "\n"))
	}
}
