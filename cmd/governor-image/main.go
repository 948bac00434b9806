// Command governor-image writes an OCI image of the governor binary as an
// OCI archive (an OCI image layout in a tar file), from scratch: one layer
// with /usr/bin/governor, no base image, nothing downloaded.
//
//	governor-image -binary bin/governor -version v1.2.3 -out governor.tar
//
// The archive's index names the image by its version
// (org.opencontainers.image.ref.name, what `skopeo copy
// oci-archive:FILE:VERSION` selects) and by NAME:VERSION
// (io.containerd.image.name, what `ctr images import` uses). Every time
// stamp is -epoch (default $SOURCE_DATE_EPOCH, else 0), so one binary
// gives one image digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryPath is where the image holds the governor, its entrypoint.
const BinaryPath = "/usr/bin/governor"

// Options say what image to build.
type Options struct {
	Binary   string    // the static governor binary to put in
	Version  string    // tag and org.opencontainers.image.version
	Name     string    // repository name for io.containerd.image.name
	Revision string    // org.opencontainers.image.revision (optional)
	Arch     string    // GOARCH the binary was built for
	Created  time.Time // every time stamp in the image
}

// tagRE is the grammar of an image tag.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func main() {
	var o Options
	var out string
	epoch := int64(0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var err error
		if epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
			fmt.Fprintf(os.Stderr, "governor-image: SOURCE_DATE_EPOCH=%q: %v\n", s, err)
			os.Exit(2)
		}
	}
	flag.StringVar(&o.Binary, "binary", "bin/governor", "`FILE`: the governor binary (static, CGO_ENABLED=0)")
	flag.StringVar(&o.Version, "version", "dev", "image `TAG` (the version)")
	flag.StringVar(&o.Name, "name", "governor", "repository `NAME` recorded for containerd's import")
	flag.StringVar(&o.Revision, "revision", "", "source `COMMIT` for the revision label")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "`GOARCH` of the binary")
	flag.Int64Var(&epoch, "epoch", epoch, "Unix `SECONDS` for every time stamp (default $SOURCE_DATE_EPOCH or 0)")
	flag.StringVar(&out, "out", "", "`FILE` to write the OCI archive to (default bin/governor-image-VERSION.tar)")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if out == "" {
		out = filepath.Join("bin", "governor-image-"+o.Version+".tar")
	}
	o.Created = time.Unix(epoch, 0).UTC()
	digest, err := Write(out, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "governor-image: %v\n", err)
		os.Exit(1)
	}
	fi, err := os.Stat(out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "governor-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s:%s (%s), %d bytes\n", out, o.Name, o.Version, digest, fi.Size())
}

// Write builds the image and writes it to out as an OCI archive; it
// returns the image's manifest digest.
func Write(out string, o Options) (v1.Hash, error) {
	if !tagRE.MatchString(o.Version) {
		return v1.Hash{}, fmt.Errorf("version %q is not a valid image tag ([A-Za-z0-9_.-], at most 128, not starting with . or -)", o.Version)
	}
	img, err := Build(o)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".governor-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
		"io.containerd.image.name":          o.Name + ":" + o.Version,
	})); err != nil {
		return v1.Hash{}, err
	}
	tmp := out + ".tmp"
	if err := tarDir(tmp, dir, o.Created); err != nil {
		os.Remove(tmp)
		return v1.Hash{}, err
	}
	return digest, os.Rename(tmp, out)
}

// Build makes the image: one layer holding the binary at BinaryPath, an
// OCI manifest and config with the entrypoint and labels.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	if len(bin) < 4 || string(bin[:4]) != "\x7fELF" {
		return nil, fmt.Errorf("%s is not an ELF binary", o.Binary)
	}
	layerTar, err := binaryLayer(bin, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: "governor-image: " + BinaryPath, Comment: "the static governor binary"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.Arch
	cf.OS = "linux"
	cf.Created = created
	labels := map[string]string{
		"org.opencontainers.image.title":       "governor",
		"org.opencontainers.image.description": "Adaptive cgroup v2 resource governor (PSI and BPF sensing, HCL policies)",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"run"},
		Labels:     labels,
		// SIGTERM: restore every changed knob, then exit.
		StopSignal: "SIGTERM",
	}
	return mutate.ConfigFile(img, cf)
}

// binaryLayer is an uncompressed layer tar: usr/, usr/bin/ and the binary,
// root's, with the fixed time stamp.
func binaryLayer(bin []byte, t time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"usr/", "usr/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: t, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: BinaryPath[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: t, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir writes the OCI layout in dir as a tar file at out, entries in name
// order with time stamp t.
func tarDir(out, dir string, t time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range paths {
		if err := addFile(tw, dir, p, t); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(tw.Close(), f.Close())
}

func addFile(tw *tar.Writer, dir, p string, t time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	switch {
	case fi.IsDir():
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: t, Format: tar.FormatPAX})
	case fi.Mode().IsRegular():
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: fi.Size(), ModTime: t, Format: tar.FormatPAX}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}
	return fmt.Errorf("%s: unexpected file type %v in the OCI layout", p, fi.Mode().Type())
}
