// Package control is the governor's local control socket: a unix stream
// socket (default /run/governor/control.sock) speaking line-delimited JSON,
// one request and one reply per line. It is read-only — status, explain,
// admission — but still reveals the node's layout, so the socket is mode
// 0600 (root) or 0660 with a configured group, and every connection's peer
// credentials (SO_PEERCRED) are checked again: uid 0, or a member of the
// group.
//
//	→ {"cmd":"status"}
//	← {"status":{...}}
//	→ {"cmd":"status","limit":40}     the first 40 cgroups by governor.RankKey
//	→ {"cmd":"explain","cgroup":"system.slice/web.service"}
//	← {"explain":["cgroup system.slice/web.service (id 1234)", ...]}
//	→ {"cmd":"admission"}
//	← {"admission":{"accepting":true,...}}
//	← {"error":"..."}   on any failure
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// DefaultPath is the socket's default location (systemd's
// RuntimeDirectory=governor).
const DefaultPath = "/run/governor/control.sock"

const (
	maxLine = 64 << 10
	// maxConns connections are served at once; the last rootReserve of
	// them only to root, so that users of --control-group cannot crowd
	// root out, and each other uid gets at most maxPerUID.
	maxConns    = 16
	rootReserve = 4
	maxPerUID   = 4
	// connLife is a connection's whole lifetime: it is set once, when the
	// connection is accepted, and input does not extend it (an idle
	// timeout reset by every line let clients sending empty lines hold a
	// slot for ever). The CLI makes one request per connection.
	connLife = 30 * time.Second
)

// Request is one line from a client.
type Request struct {
	Cmd    string `json:"cmd"`              // "status", "explain", "admission"
	Cgroup string `json:"cgroup,omitempty"` // for explain
	// Limit, for status: at most this many cgroups, the first by
	// governor.RankKey, in that order (0: every one, in the loop's order).
	Limit int `json:"limit,omitempty"`
}

// Reply is one line to a client; exactly one field is set.
type Reply struct {
	Status    *Status                    `json:"status,omitempty"`
	Explain   []string                   `json:"explain,omitempty"`
	Admission *governor.AdmissionVerdict `json:"admission,omitempty"`
	Error     string                     `json:"error,omitempty"`
}

// Status is governor.Status in a form that survives JSON (errors as text)
// plus how each cgroup's limits are written and the admission verdict.
type Status struct {
	Time        time.Time                   `json:"time"`
	DryRun      bool                        `json:"dry_run"`
	LastStep    governor.StepResult         `json:"last_step"`
	Host        map[string]float64          `json:"host"`
	Cgroups     []Cgroup                    `json:"cgroups"`
	Governed    int                         `json:"governed"`          // cgroups in a class, listed or not
	Omitted     int                         `json:"omitted,omitempty"` // governed cgroups the limit left out
	Controllers []governor.ControllerStatus `json:"controllers"`
	Admission   *governor.AdmissionVerdict  `json:"admission,omitempty"`
}

// Cgroup is one governed cgroup.
type Cgroup struct {
	Path      string                `json:"path"`
	ID        uint64                `json:"id"`
	Class     string                `json:"class"`
	Protected bool                  `json:"protected"`
	Denied    string                `json:"denied,omitempty"`
	Via       string                `json:"via,omitempty"`
	Signals   map[string]float64    `json:"signals"`
	Knobs     []governor.KnobStatus `json:"knobs,omitempty"`
	Last      *Action               `json:"last,omitempty"`
}

// Action is governor.Action with the error as text.
type Action struct {
	Time       time.Time `json:"time"`
	Controller string    `json:"controller"`
	Kind       string    `json:"kind"`
	Knob       string    `json:"knob"`
	Old        string    `json:"old,omitempty"`
	New        string    `json:"new,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	DryRun     bool      `json:"dry_run,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// FromAction converts a loop action.
func FromAction(a *governor.Action) *Action {
	if a == nil {
		return nil
	}
	out := &Action{Time: a.Time, Controller: a.Controller, Kind: a.Kind, Knob: a.Knob, Old: a.Old, New: a.New, Reason: a.Reason, DryRun: a.DryRun}
	if a.Err != nil {
		out.Error = a.Err.Error()
	}
	return out
}

// Backend answers requests; normally the running loop's methods.
type Backend struct {
	Status func(ctx context.Context) (governor.Status, error)
	// Visit, optional, is the loop's VisitStatus: a status with a limit
	// then keeps copies of the cgroups it lists only.
	Visit     func(ctx context.Context, visit func(*governor.CgroupStatus), only ...governor.Signal) (governor.Status, error)
	Explain   func(ctx context.Context, path string) ([]string, error)
	Admission func(ctx context.Context) (governor.AdmissionVerdict, error)
	// Via, optional, says how a cgroup's limits are written.
	Via func(governor.Ref) string
}

// Options configure a Server.
type Options struct {
	// Path of the socket (default DefaultPath).
	Path string
	// Group, if set (a name or a numeric gid), may use the socket too: it
	// is then mode 0660 and owned by that group.
	Group  string
	Logger hclog.Logger
	// Timeout bounds each request's wait for the loop (default 5 s).
	Timeout time.Duration
	// ConnLife bounds each connection's whole lifetime, however active
	// (default 30 s).
	ConnLife time.Duration
}

// Server is a listening control socket.
type Server struct {
	ln      *net.UnixListener
	path    string
	gid     int // -1: root only
	log     hclog.Logger
	b       Backend
	timeout time.Duration
	life    time.Duration
	wg      sync.WaitGroup
	mode    os.FileMode // tests widen it to reach the credential check

	mu       sync.Mutex
	open     int            // connections being served
	byUID    map[uint32]int // of which per uid
	busyLogs time.Time      // last "busy" log line (at most one per 10 s)
	busyMiss int            // busy refusals not logged since
}

// LookupGroup resolves a group name or numeric gid.
func LookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(gr.Gid)
}

// Listen creates the socket (replacing a stale one) with its mode and
// group set before anyone can connect: it is bound with a umask-safe
// temporary mode and chmod/chown'ed before Serve accepts.
func Listen(opts Options, b Backend) (*Server, error) {
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.ConnLife <= 0 {
		opts.ConnLife = connLife
	}
	s := &Server{path: opts.Path, gid: -1, log: opts.Logger, b: b, timeout: opts.Timeout, life: opts.ConnLife,
		byUID: make(map[uint32]int), mode: 0o600}
	if opts.Group != "" {
		gid, err := LookupGroup(opts.Group)
		if err != nil {
			return nil, fmt.Errorf("control socket group %q: %w", opts.Group, err)
		}
		s.gid, s.mode = gid, 0o660
	}
	// The directory is also the state directory (--state-dir): created
	// 0700 (docs/THREAT-MODEL.md), or 0710 with the socket's group so that
	// its members can reach the socket and nothing else.
	// The daemon may have made it already (its lock lives there, 0700):
	// a directory the daemon made, or finds at 0700, is opened to the
	// group; one an operator made otherwise is left as it is.
	dir := filepath.Dir(s.path)
	fi, missing := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if s.gid >= 0 && (errors.Is(missing, os.ErrNotExist) || (missing == nil && fi.Mode().Perm() == 0o700)) {
		if err := os.Chown(dir, -1, s.gid); err != nil {
			return nil, fmt.Errorf("control socket directory: %w", err)
		}
		if err := os.Chmod(dir, 0o710); err != nil {
			return nil, fmt.Errorf("control socket directory: %w", err)
		}
	}
	if fi, err := os.Lstat(s.path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", s.path)
		}
		_ = os.Remove(s.path)
	}
	// Bind under a temporary name (with the usual umask nobody but root
	// can write, i.e. connect to, it), set mode and group, then move it
	// into place: there is no moment at which the final path is open to
	// more than it should be.
	tmp := fmt.Sprintf("%s.%d.tmp", s.path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	s.ln = ln
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if s.gid >= 0 {
		if err := os.Chown(tmp, 0, s.gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, s.mode); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fail(err)
	}
	return s, nil
}

// Path is where the socket listens.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until ctx ends or Close is called.
func (s *Server) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); s.Close() }()
	if s.gid < 0 {
		s.log.Info("control socket listening", "path", s.path, "access", "root only")
	} else {
		s.log.Info("control socket listening", "path", s.path, "access", "root and group", "gid", s.gid)
	}
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				return nil
			}
			s.log.Warn("control socket accept", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// Who it is decides whether it gets a slot; both answers below
		// are a line written to a fresh socket, which does not block.
		cred, err := peer(c)
		if err != nil || !s.allowed(cred) {
			s.refuse(c, cred)
			continue
		}
		if why := s.take(cred.Uid); why != "" {
			s.busy(c, cred, why)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(cred.Uid)
			s.handle(ctx, c)
		}()
	}
}

// take reserves a slot for a connection of uid, or says why there is none.
func (s *Server) take(uid uint32) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open >= maxConns:
		return fmt.Sprintf("%d connections open, the most served at once", s.open)
	case uid != 0 && s.open-s.byUID[0] >= maxConns-rootReserve:
		return fmt.Sprintf("%d connections of users other than root open, the most served at once (%d more are kept for root)", s.open-s.byUID[0], rootReserve)
	case uid != 0 && s.byUID[uid] >= maxPerUID:
		return fmt.Sprintf("uid %d has %d connections open, the most per user", uid, s.byUID[uid])
	}
	s.open++
	s.byUID[uid]++
	return ""
}

func (s *Server) release(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.byUID[uid]--; s.byUID[uid] <= 0 {
		delete(s.byUID, uid)
	}
}

// refuse answers a peer that may not use the socket, and closes it.
func (s *Server) refuse(c *net.UnixConn, cred *unix.Ucred) {
	defer c.Close()
	who := "unknown"
	if cred != nil {
		who = fmt.Sprintf("uid %d gid %d pid %d", cred.Uid, cred.Gid, cred.Pid)
	}
	s.log.Warn("control socket: refused a client", "peer", who)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = json.NewEncoder(c).Encode(Reply{Error: "permission denied: the control socket is for root" + s.groupNote()})
}

// busy answers a client turned away for want of a slot, and closes it.
func (s *Server) busy(c *net.UnixConn, cred *unix.Ucred, why string) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = json.NewEncoder(c).Encode(Reply{Error: ErrBusy + ": " + why + "; try again shortly"})
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.busyLogs) < 10*time.Second {
		s.busyMiss++
		return
	}
	s.log.Warn("control socket busy: turned a client away", "peer", fmt.Sprintf("uid %d pid %d", cred.Uid, cred.Pid), "why", why, "also_turned_away", s.busyMiss)
	s.busyLogs, s.busyMiss = time.Now(), 0
}

// ErrBusy starts the error reply of a client turned away because too many
// connections are open.
const ErrBusy = "busy"

// Close stops listening and removes the socket.
func (s *Server) Close() error {
	err := s.ln.Close()
	os.Remove(s.path)
	return err
}

// peer returns the connecting process's credentials.
func peer(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// allowed checks a peer: uid 0, or (with a group configured) the group as
// its primary or a supplementary group.
func (s *Server) allowed(cred *unix.Ucred) bool {
	if cred.Uid == 0 {
		return true
	}
	if s.gid < 0 {
		return false
	}
	if int(cred.Gid) == s.gid {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cred.Pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			for _, g := range strings.Fields(rest) {
				if g == strconv.Itoa(s.gid) {
					return true
				}
			}
		}
	}
	return false
}

func (s *Server) handle(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	// One deadline for the connection's whole life, never extended.
	_ = c.SetDeadline(time.Now().Add(s.life))
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	for {
		line, err := readLine(r)
		if err != nil {
			if len(line) > 0 {
				_ = enc.Encode(Reply{Error: err.Error()})
			}
			return
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var req Request
		var rep Reply
		if err := json.Unmarshal(line, &req); err != nil {
			rep.Error = "bad request: " + err.Error()
		} else {
			rep = s.answer(ctx, req)
		}
		if err := enc.Encode(rep); err != nil {
			return
		}
	}
}

func (s *Server) groupNote() string {
	if s.gid < 0 {
		return ""
	}
	return fmt.Sprintf(" and group %d", s.gid)
}

var errTooLong = errors.New("request line too long")

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, isPrefix, err := r.ReadLine()
		line = append(line, part...)
		if err != nil {
			return line, err
		}
		if len(line) > maxLine {
			return line, errTooLong
		}
		if !isPrefix {
			return line, nil
		}
	}
}

func (s *Server) answer(ctx context.Context, req Request) Reply {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	switch req.Cmd {
	case "status":
		if s.b.Status == nil {
			return Reply{Error: "status unavailable"}
		}
		if req.Limit < 0 {
			return Reply{Error: fmt.Sprintf("status: limit %d is negative", req.Limit)}
		}
		var out *Status
		if req.Limit > 0 && s.b.Visit != nil {
			top := newTopN(req.Limit)
			st, err := s.b.Visit(ctx, top.add)
			if err != nil {
				return Reply{Error: "status: " + err.Error()}
			}
			out = convert(st, nil)
			out.Cgroups = top.sorted(s.b.Via)
			out.Governed, out.Omitted = top.top.Seen(), top.top.Seen()-len(out.Cgroups)
		} else {
			st, err := s.b.Status(ctx)
			if err != nil {
				return Reply{Error: "status: " + err.Error()}
			}
			out = convert(st, s.b.Via)
			out.Governed = len(out.Cgroups)
			if req.Limit > 0 && len(st.Cgroups) > req.Limit {
				top := newTopN(req.Limit)
				for i := range st.Cgroups {
					top.add(&st.Cgroups[i])
				}
				out.Cgroups = top.sorted(s.b.Via)
				out.Omitted = out.Governed - len(out.Cgroups)
			}
		}
		if s.b.Admission != nil {
			if vd, err := s.b.Admission(ctx); err == nil {
				out.Admission = &vd
			}
		}
		return Reply{Status: out}
	case "explain":
		if s.b.Explain == nil {
			return Reply{Error: "explain unavailable"}
		}
		p := strings.Trim(req.Cgroup, "/")
		lines, err := s.b.Explain(ctx, p)
		if err != nil {
			return Reply{Error: err.Error()}
		}
		return Reply{Explain: lines}
	case "admission":
		if s.b.Admission == nil {
			return Reply{Error: "admission unavailable"}
		}
		vd, err := s.b.Admission(ctx)
		if err != nil {
			return Reply{Error: "admission: " + err.Error()}
		}
		return Reply{Admission: &vd}
	}
	return Reply{Error: fmt.Sprintf("unknown command %q (status, explain, admission)", req.Cmd)}
}

func convert(st governor.Status, via func(governor.Ref) string) *Status {
	out := &Status{Time: st.Time, DryRun: st.DryRun, LastStep: st.LastStep, Host: st.Host, Controllers: st.Controllers}
	for i := range st.Cgroups {
		out.Cgroups = append(out.Cgroups, fromStatus(&st.Cgroups[i], via))
	}
	return out
}

func fromStatus(cg *governor.CgroupStatus, via func(governor.Ref) string) Cgroup {
	c := Cgroup{Path: cg.Path, ID: uint64(cg.ID), Class: cg.Class, Protected: cg.Protected, Denied: cg.Denied,
		Signals: cg.Signals, Knobs: cg.Knobs, Last: FromAction(cg.Last)}
	if via != nil {
		c.Via = via(cg.Ref)
	}
	return c
}

// topN keeps the first n cgroups by governor.RankKey as they are handed
// over one at a time; Loop.VisitStatus reuses the status and its Signals,
// so the kept ones are copies.
type topN struct {
	top *governor.Top[governor.CgroupStatus]
}

func newTopN(n int) *topN { return &topN{governor.NewTop[governor.CgroupStatus](n)} }

func (t *topN) add(cs *governor.CgroupStatus) {
	t.top.Offer(cs.Rank(), func() governor.CgroupStatus {
		c := *cs
		c.Signals = maps.Clone(cs.Signals)
		return c
	})
}

// sorted returns the kept cgroups, first first.
func (t *topN) sorted(via func(governor.Ref) string) []Cgroup {
	kept := t.top.Ranked()
	out := make([]Cgroup, 0, len(kept))
	for i := range kept {
		out = append(out, fromStatus(&kept[i], via))
	}
	return out
}

// Client talks to a control socket.
type Client struct {
	Path string
}

// Call sends one request and reads its reply, bounded by ctx.
func (c Client) Call(ctx context.Context, req Request) (*Reply, error) {
	path := c.Path
	if path == "" {
		path = DefaultPath
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the governor's control socket (is it running, and are you root?): %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A refused client gets its reply before the server reads anything:
	// read it even if the write failed.
	werr := json.NewEncoder(conn).Encode(req)
	var rep Reply
	dec := json.NewDecoder(bufio.NewReader(conn))
	if err := dec.Decode(&rep); err != nil {
		// Name the daemon by its credentials, not by the socket's address
		// (the temporary name it was bound under before the rename).
		who := path
		if uc, ok := conn.(*net.UnixConn); ok {
			if cred, cerr := peer(uc); cerr == nil {
				who = fmt.Sprintf("%s (daemon pid %d, uid %d)", path, cred.Pid, cred.Uid)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, unix.ECONNRESET) {
			return nil, fmt.Errorf("control socket %s: the daemon closed the connection without a reply", who)
		}
		if werr != nil {
			return nil, fmt.Errorf("control socket %s: %w", who, bareNetError(werr))
		}
		return nil, fmt.Errorf("control socket %s: reading reply: %w", who, bareNetError(err))
	}
	if rep.Error != "" {
		return &rep, errors.New(rep.Error)
	}
	return &rep, nil
}

// bareNetError drops a *net.OpError's addresses ("read unix
// @->/run/governor/control.sock.1234.tmp: ..."): the caller names the
// socket and its peer itself.
func bareNetError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// Status asks for the status of every governed cgroup.
func (c Client) Status(ctx context.Context) (*Status, error) { return c.StatusTop(ctx, 0) }

// StatusTop asks for the status with at most limit cgroups, the first by
// governor.RankKey (0: every one).
func (c Client) StatusTop(ctx context.Context, limit int) (*Status, error) {
	rep, err := c.Call(ctx, Request{Cmd: "status", Limit: limit})
	if err != nil {
		return nil, err
	}
	if rep.Status == nil {
		return nil, errors.New("control socket: empty status reply")
	}
	return rep.Status, nil
}

// Explain asks why the governor does what it does to one cgroup.
func (c Client) Explain(ctx context.Context, cgroup string) ([]string, error) {
	rep, err := c.Call(ctx, Request{Cmd: "explain", Cgroup: cgroup})
	if err != nil {
		return nil, err
	}
	return rep.Explain, nil
}

// Admission asks for the admission verdict.
func (c Client) Admission(ctx context.Context) (*governor.AdmissionVerdict, error) {
	rep, err := c.Call(ctx, Request{Cmd: "admission"})
	if err != nil {
		return nil, err
	}
	if rep.Admission == nil {
		return nil, errors.New("control socket: empty admission reply")
	}
	return rep.Admission, nil
}
