package policies

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/governor-dev/governor/governor"
)

// Options change how Load reads policy files.
type Options struct {
	// AllowInsecure skips the ownership and permission checks (for tests
	// and for validating files that are not installed yet).
	AllowInsecure bool
}

// Result is the outcome of loading policy files.
type Result struct {
	// Policy is the compiled policy; nil if Diags.HasErrors().
	Policy *governor.Policy
	// Diags holds every error and warning, with source ranges where the
	// problem is in a file.
	Diags hcl.Diagnostics
	// Files are the parsed files by name, for the diagnostic text writer.
	Files map[string]*hcl.File
}

// maxFileSize bounds a policy file; real policies are a few KiB.
const maxFileSize = 4 << 20

// Load reads, checks and compiles policy files. Each path is a file or a
// directory; a directory contributes every *.hcl file directly in it (not in
// subdirectories, not names starting with '.'), in name order. All files
// form one policy: classes and controllers from any file can refer to each
// other, and names must be unique across them.
//
// Unless opts.AllowInsecure, every file and every directory read must be
// owned by root and not writable by group or others: a policy can freeze or
// kill any cgroup, so whoever can write one controls the machine; a
// directory that is the root of a read-only mount (a Kubernetes ConfigMap
// volume) may have write bits, see checkOwnership. Symlinks
// are followed and the file or directory they lead to is what is checked
// (its fstat after opening, so the check and the read see the same file);
// a symlink must lead to a *.hcl file. FIFOs, sockets and devices are
// refused without being opened. The directory holding an explicitly named
// file is not checked.
func Load(paths []string, opts Options) *Result {
	l := &loader{parser: hclparse.NewParser(), opts: opts}
	if len(paths) == 0 {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No policy paths",
			Detail:   "Give at least one policy file or directory.",
		})
	}
	for _, p := range paths {
		l.path(p)
	}
	return l.finish()
}

// LoadSource compiles one policy from memory, without any file checks. name
// is the file name used in diagnostics and origins.
func LoadSource(name string, src []byte) *Result {
	l := &loader{parser: hclparse.NewParser()}
	l.parse(name, src)
	return l.finish()
}

// WriteDiagnostics prints r.Diags with source excerpts and carets, wrapped
// at 100 columns when color is set (a terminal) and unwrapped otherwise.
func (r *Result) WriteDiagnostics(w io.Writer, color bool) error {
	var width uint
	if color {
		width = 100
	}
	return hcl.NewDiagnosticTextWriter(w, r.Files, width, color).WriteDiagnostics(r.Diags)
}

type loader struct {
	parser *hclparse.Parser
	opts   Options
	files  []*hcl.File
	diags  hcl.Diagnostics
	seen   []fs.FileInfo // files read so far, to read each once
}

func (l *loader) finish() *Result {
	r := &Result{Files: l.parser.Files()}
	r.Diags = l.diags
	if !l.diags.HasErrors() {
		pol, diags := compile(l.files)
		r.Policy = pol
		r.Diags = append(r.Diags, diags...)
	}
	// gohcl decodes in map order: sort so one policy always gives its
	// diagnostics in the same order (file, line, column).
	sort.SliceStable(r.Diags, func(i, j int) bool {
		a, b := r.Diags[i].Subject, r.Diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
	return r
}

func (l *loader) fail(summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
	})
}

func (l *loader) path(p string) {
	f, fi, ok := l.open(p, false)
	if !ok {
		return
	}
	defer f.Close()
	if !fi.IsDir() {
		l.file(p, f, fi)
		return
	}
	if !l.secure(p, f, fi) {
		return
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		l.fail("Cannot read policy directory", "%s: %v.", p, err)
		return
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		// Names starting with '.' are not policies; that includes the
		// "..data" and "..<timestamp>" entries of a Kubernetes ConfigMap
		// volume, whose *.hcl files are symlinks through "..data".
		if !strings.HasSuffix(name, ".hcl") || strings.HasPrefix(name, ".") {
			continue
		}
		n++
		full := filepath.Join(p, name)
		g, gi, ok := l.open(full, true)
		if !ok {
			continue
		}
		l.file(full, g, gi)
		g.Close()
	}
	if n == 0 {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No policy files",
			Detail:   fmt.Sprintf("Directory %s holds no *.hcl files.", p),
		})
	}
}

// open opens a policy file, or a directory when it was named (not found in
// a directory), without blocking and without reading anything but a
// regular file or a directory. A symlink is resolved first and what it
// leads to is what is opened and checked; it must lead to a file whose name
// ends in ".hcl" (a symlink named "x.hcl" leading to /etc/shadow is not a
// policy). Anything else (a FIFO, socket or device, a symlink loop) is
// refused before it is opened, so a FIFO cannot block a reload and a
// device is never opened; the fstat of the opened file must be the file
// checked, or it changed in between and is refused too. A refused file is
// never read, so no diagnostic can print its contents.
func (l *loader) open(name string, entry bool) (*os.File, fs.FileInfo, bool) {
	target := name
	li, err := os.Lstat(name)
	if err != nil {
		l.fail("Cannot read policy", "%v.", err)
		return nil, nil, false
	}
	link := li.Mode()&fs.ModeSymlink != 0
	if link {
		if target, err = filepath.EvalSymlinks(name); err != nil {
			l.fail("Cannot read policy", "%s is a symlink that does not resolve: %v.", name, err)
			return nil, nil, false
		}
		if li, err = os.Lstat(target); err != nil {
			l.fail("Cannot read policy", "%v.", err)
			return nil, nil, false
		}
	}
	switch {
	case li.Mode().IsRegular():
		if link && !strings.HasSuffix(target, ".hcl") {
			l.fail("Not a policy file",
				"%s is a symlink to %s, which is not a *.hcl file; a symlink in place of a policy file must lead to one.", name, target)
			return nil, nil, false
		}
	case li.IsDir() && !entry:
	default:
		what := "a regular file"
		if !entry {
			what = "a regular file or a directory"
		}
		if link {
			name = fmt.Sprintf("%s (a symlink to %s)", name, target)
		}
		l.fail("Not a policy file", "%s is not %s but %s.", name, what, fileType(li.Mode()))
		return nil, nil, false
	}
	f, err := os.OpenFile(target, os.O_RDONLY|openFlags, 0)
	if err != nil {
		l.fail("Cannot read policy", "%v.", err)
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(li, fi) {
		f.Close()
		l.fail("Cannot read policy", "%s changed while it was being opened; not read.", name)
		return nil, nil, false
	}
	return f, fi, true
}

// fileType names a file mode's type for a diagnostic.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return fmt.Sprintf("a file of type %v", m.Type())
}

func (l *loader) file(name string, f *os.File, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		l.fail("Not a policy file", "%s is not a regular file.", name)
		return
	}
	if !l.secure(name, f, fi) {
		return
	}
	for _, prev := range l.seen {
		if os.SameFile(prev, fi) {
			return // named twice (e.g. as a file and through its directory)
		}
	}
	l.seen = append(l.seen, fi)
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		l.fail("Cannot read policy", "%s: %v.", name, err)
		return
	}
	if len(src) > maxFileSize {
		l.fail("Policy file too large", "%s is larger than %d MiB.", name, maxFileSize>>20)
		return
	}
	l.parse(name, src)
}

func (l *loader) parse(name string, src []byte) {
	// The shape check comes before the parser sees the bytes: a file it
	// refuses could crash the parser (see limits.go).
	if diags := checkShape(name, src); diags.HasErrors() {
		l.diags = append(l.diags, diags...)
		return
	}
	f, diags := l.parser.ParseHCL(src, name)
	if f != nil && !diags.HasErrors() {
		diags = append(diags, checkLoops(f)...)
	}
	l.diags = append(l.diags, diags...)
	if f != nil && !diags.HasErrors() {
		l.files = append(l.files, f)
	}
}

// secure applies the ownership and permission check to an opened file or
// directory; f.Name() is where a symlink named name led.
func (l *loader) secure(name string, f *os.File, fi fs.FileInfo) bool {
	if l.opts.AllowInsecure {
		return true
	}
	if err := checkOwnership(f, fi); err != nil {
		what := "file"
		if fi.IsDir() {
			what = "directory"
		}
		shown, fix := name, name
		if f.Name() != name {
			shown, fix = fmt.Sprintf("%s (a symlink to %s)", name, f.Name()), f.Name()
		}
		l.fail("Insecure policy "+what,
			"%s %v. Policy files can freeze or kill any cgroup, so only root may be able to change them: chown root %s && chmod go-w %s.",
			shown, err, fix, fix)
		return false
	}
	return true
}

// errNotRoot and errWritable are what checkOwnership reports.
var (
	errNotRoot  = errors.New("is not owned by root")
	errWritable = errors.New("is writable by group or others")
)
