package policies

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// kubeletVolume lays out dir as kubelet lays out a ConfigMap volume: the
// volume directory itself of mode dirMode (0777, or 1777 with fsGroup), a
// timestamped 0755 directory with the files (mode 0444 here, defaultMode),
// a "..data" symlink to it and one symlink per key through "..data".
func kubeletVolume(t *testing.T, dir string, dirMode os.FileMode, uid int) {
	t.Helper()
	ts := filepath.Join(dir, "..2026_12_06_08_20_00.000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(ts, "node.hcl")
	if err := os.WriteFile(file, []byte(tinyPolicy), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(file, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/node.hcl", filepath.Join(dir, "node.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		t.Fatal(err)
	}
}

// mountReadOnly bind-mounts dir onto itself read-only, as a container
// runtime mounts a ConfigMap volume into a container, until the test ends.
func mountReadOnly(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("cannot bind-mount here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("writing into the read-only mount: %v, want EROFS", err)
	}
}

// TestConfigMapVolume: the DaemonSet's policy comes from a ConfigMap, whose
// volume directory kubelet makes 0777 (1777 with fsGroup); `run` refused
// it ("Insecure policy directory ... mode 0777"), so the pod crash-looped.
// As the root of a read-only mount, which is how kubelet mounts ConfigMap
// volumes, it loads. Still refused: the same directory on a writable
// mount; a writable directory that is on a read-only mount but not its
// root (/etc under ProtectSystem=strict, which others can write outside
// the service); a file of another owner; a group/other-writable file.
func TestConfigMapVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: ownership checks and bind mounts")
	}
	for _, mode := range []os.FileMode{0o777, 0o777 | os.ModeSticky} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			kubeletVolume(t, dir, mode, 0)
			wantRefused(t, "writable mount", loadWithin(t, []string{dir}, Options{}),
				dir+" is writable by group or others (mode 0777)")
			mountReadOnly(t, dir)
			r := loadWithin(t, []string{dir}, Options{})
			if r.Policy == nil || r.Diags.HasErrors() || len(r.Policy.Classes) != 1 {
				t.Fatalf("read-only ConfigMap volume: %v", r.Diags)
			}
			// Named as a file (--config=/etc/governor/node.hcl) too.
			r = loadWithin(t, []string{filepath.Join(dir, "node.hcl")}, Options{})
			if r.Policy == nil || r.Diags.HasErrors() {
				t.Fatalf("read-only ConfigMap file: %v", r.Diags)
			}
		})
	}
	t.Run("not the mount's root", func(t *testing.T) {
		top := t.TempDir()
		dir := filepath.Join(top, "governor")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		kubeletVolume(t, dir, 0o777, 0)
		mountReadOnly(t, top)
		wantRefused(t, "writable directory below a read-only mount's root", loadWithin(t, []string{dir}, Options{}),
			dir+" is writable by group or others (mode 0777)")
	})
	t.Run("not root's", func(t *testing.T) {
		dir := t.TempDir()
		kubeletVolume(t, dir, 0o777, 1000)
		mountReadOnly(t, dir)
		wantRefused(t, "user's file on a read-only mount", loadWithin(t, []string{dir}, Options{}),
			"is not owned by root (owner uid 1000)")
	})
	t.Run("writable file", func(t *testing.T) {
		// defaultMode 0666: the file is writable wherever else the
		// volume is mounted; refused, read-only mount or not.
		dir := t.TempDir()
		kubeletVolume(t, dir, 0o777, 0)
		if err := os.Chmod(filepath.Join(dir, "..data", "node.hcl"), 0o666); err != nil {
			t.Fatal(err)
		}
		mountReadOnly(t, dir)
		wantRefused(t, "0666 file on a read-only mount", loadWithin(t, []string{dir}, Options{}),
			"is writable by group or others (mode 0666)")
	})
}
