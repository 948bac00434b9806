package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// buildGovernor builds the real, static binary the way `make build` does.
func buildGovernor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "governor")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, "../governor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// untar extracts an archive under dir (regular files and directories only).
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("entry %q: unexpected type %c", h.Name, h.Typeflag)
		}
	}
}

// TestImage builds the OCI archive from the real binary, reads it back as
// an OCI layout and checks the index names, the config (entrypoint,
// labels, platform) and that the one layer holds exactly the binary; as
// root it then runs the binary from the extracted layer alone (chroot):
// a scratch image has no libc, no shell, no /etc.
func TestImage(t *testing.T) {
	bin := buildGovernor(t)
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	created := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	o := Options{Binary: bin, Version: "v9.8.7-test", Name: "governor", Revision: "abc123", Arch: runtime.GOARCH, Created: created}
	digest, err := Write(out, o)
	if err != nil {
		t.Fatal(err)
	}
	// The same binary gives the same image.
	if again, err := Write(filepath.Join(t.TempDir(), "again.tar"), o); err != nil || again != digest {
		t.Errorf("second build: digest %v (%v), first %v: not reproducible", again, err, digest)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	untar(t, f, dir)
	f.Close()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index lists %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.Digest != digest || d.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("index entry %v %s, want %v, an OCI manifest", d.Digest, d.MediaType, digest)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != "v9.8.7-test" {
		t.Errorf("ref.name %q", got)
	}
	if got := d.Annotations["io.containerd.image.name"]; got != "governor:v9.8.7-test" {
		t.Errorf("io.containerd.image.name %q", got)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !cf.Created.Time.Equal(created) {
		t.Errorf("platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != BinaryPath {
		t.Errorf("entrypoint %q, want %q", got, BinaryPath)
	}
	if got := strings.Join(cf.Config.Cmd, " "); got != "run" {
		t.Errorf("cmd %q, want run", got)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":    "governor",
		"org.opencontainers.image.version":  "v9.8.7-test",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2026-12-06T08:00:00Z",
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	checkLayer(t, layers[0], want)

	if os.Geteuid() != 0 {
		t.Skip("not root: the binary is not run from the image's file system")
	}
	rootfs := t.TempDir()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	untar(t, rc, rootfs)
	rc.Close()
	cmd := exec.Command(BinaryPath, "version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs}
	cmd.Dir = "/"
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "v9.8.7-test") {
		t.Errorf("%s version in the image's file system: %v, output %q", BinaryPath, err, got)
	}
}

// checkLayer: the layer is usr/, usr/bin/ and the binary (root's, 0755,
// the same bytes), nothing else.
func checkLayer(t *testing.T, l v1.Layer, want []byte) {
	t.Helper()
	mt, err := l.MediaType()
	if err != nil || mt != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("layer media type %q (%v)", mt, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name != "usr/bin/governor" {
			continue
		}
		got, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("usr/bin/governor: %d bytes (want %d, equal %v), mode %#o, owner %d:%d", len(got), len(want), bytes.Equal(got, want), h.Mode, h.Uid, h.Gid)
		}
	}
	if strings.Join(names, " ") != "usr/ usr/bin/ usr/bin/governor" {
		t.Errorf("layer entries %q", names)
	}
}

// TestBadInput: a version that is no tag, and a file that is no binary,
// are refused before anything is written.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "governor")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.tar")
	if _, err := Write(out, Options{Binary: text, Version: "1.0+dirty"}); err == nil || !strings.Contains(err.Error(), "not a valid image tag") {
		t.Errorf("version with '+': %v", err)
	}
	if _, err := Write(out, Options{Binary: text, Version: "v1"}); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("shell script: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written after an error", out)
	}
}
