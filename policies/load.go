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
// kill any cgroup, so whoever can write one controls the machine. Symlinks
// are followed and the file or directory they lead to is what is checked
// (its fstat after opening, so the check and the read see the same file).
// The directory holding an explicitly named file is not checked.
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
	f, err := os.Open(p)
	if err != nil {
		l.fail("Cannot read policy", "%v.", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		l.fail("Cannot read policy", "%v.", err)
		return
	}
	if !fi.IsDir() {
		l.file(p, f, fi)
		return
	}
	if !l.secure(p, fi) {
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
		if !strings.HasSuffix(name, ".hcl") || strings.HasPrefix(name, ".") {
			continue
		}
		n++
		full := filepath.Join(p, name)
		g, err := os.Open(full)
		if err != nil {
			l.fail("Cannot read policy", "%v.", err)
			continue
		}
		gi, err := g.Stat()
		if err != nil {
			l.fail("Cannot read policy", "%v.", err)
		} else {
			l.file(full, g, gi)
		}
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

func (l *loader) file(name string, f *os.File, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		l.fail("Not a policy file", "%s is not a regular file.", name)
		return
	}
	if !l.secure(name, fi) {
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
// directory.
func (l *loader) secure(name string, fi fs.FileInfo) bool {
	if l.opts.AllowInsecure {
		return true
	}
	if err := checkOwnership(fi); err != nil {
		what := "file"
		if fi.IsDir() {
			what = "directory"
		}
		l.fail("Insecure policy "+what,
			"%s %v. Policy files can freeze or kill any cgroup, so only root may be able to change them: chown root %s && chmod go-w %s.",
			name, err, name, name)
		return false
	}
	return true
}

// errNotRoot and errWritable are what checkOwnership reports.
var (
	errNotRoot  = errors.New("is not owned by root")
	errWritable = errors.New("is writable by group or others")
)
