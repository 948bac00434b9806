package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// A re-executed test binary acts as a client of the socket named here, so
// the refusal of other users can be tested with a real peer of another uid.
const childEnv = "GOVERNOR_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		holdConnections(path)
		os.Exit(0)
	}
	if path := os.Getenv(childEnv); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := Client{Path: path}.Status(ctx)
		if err != nil {
			fmt.Println("ERR:", err)
		} else {
			fmt.Println("OK:", len(st.Cgroups))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newSource serves cgs and a host with a little memory pressure.
func newSource(cgs ...governor.Sample) *govtest.Source {
	src := &govtest.Source{Cgs: cgs}
	src.Host.Set(governor.MemorySomeAvg10, 1)
	return src
}

// runLoop starts a loop on fakes: web is under CPU pressure, so batch's
// cpu.weight gets squeezed once.
func runLoop(t *testing.T) *governor.Loop {
	t.Helper()
	web := governor.Sample{Ref: governor.Ref{ID: 2, Path: "system.slice/web.service"}, Populated: true}
	web.Set(governor.CPUSomeAvg10, 40)
	web.Set(governor.RunqP99, 0.004)
	job := governor.Sample{Ref: governor.Ref{ID: 3, Path: "batch.slice/job1"}, Populated: true}
	src := newSource(web, job)
	p := govtest.Squeeze(10 * time.Millisecond)
	loop, err := governor.New(governor.Config{Policy: p, Sources: []governor.Source{src}, Actuator: govtest.NewActuator(),
		Caps: governor.Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true, "io": true}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return loop
}

func backend(l *governor.Loop) Backend {
	return Backend{Status: l.Status, Explain: l.Explain, Admission: l.Admission,
		Via: func(r governor.Ref) string {
			if strings.HasSuffix(r.Path, ".service") {
				return "systemd"
			}
			return "cgroupfs"
		}}
}

func serve(t *testing.T, opts Options, b Backend) *Server {
	t.Helper()
	s, err := Listen(opts, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestStatusRoundTrip(t *testing.T) {
	loop := runLoop(t)
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	serve(t, Options{Path: path}, backend(loop))
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	c := Client{Path: path}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var st *Status
	for {
		var err error
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if len(st.Cgroups) == 2 && st.Cgroups[0].Last != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	job, web := st.Cgroups[0], st.Cgroups[1]
	if job.Path != "batch.slice/job1" || job.Class != "batch" || job.Via != "cgroupfs" || web.Via != "systemd" || !web.Protected {
		t.Errorf("cgroups: %+v", st.Cgroups)
	}
	if len(job.Knobs) != 1 || job.Knobs[0].Knob != "cpu.weight" || job.Knobs[0].Value != "50" || job.Knobs[0].Original != "100" {
		t.Errorf("knobs: %+v", job.Knobs)
	}
	if job.Last.Controller != "squeeze" || job.Last.Kind != "write" || !strings.Contains(job.Last.Reason, "cpu.some.avg10") {
		t.Errorf("last action: %+v", job.Last)
	}
	if web.Signals["runq.p99"] != 0.004 {
		t.Errorf("signals: %v", web.Signals)
	}
	if st.Admission == nil || st.Admission.Accepting {
		// web at 40% cpu for 10 ms of fake ticks is not 10 s: accepting.
		if st.Admission == nil || !st.Admission.Accepting {
			t.Errorf("admission: %+v", st.Admission)
		}
	}

	lines, err := c.Explain(ctx, "/batch.slice/job1")
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), `suppress "squeeze" targets it`) {
		t.Errorf("explain: %v %q", err, lines)
	}
	if _, err := c.Explain(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "no such cgroup") {
		t.Errorf("explain of an unknown cgroup: %v", err)
	}
	vd, err := c.Admission(ctx)
	if err != nil || !vd.Accepting || len(vd.Conditions) != 4 {
		t.Errorf("admission: %+v %v", vd, err)
	}
	if _, err := c.Call(ctx, Request{Cmd: "reboot"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}

	// Several requests on one connection; garbage gets an error reply.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "not json\n{\"cmd\":\"admission\"}\n")
	r := bufio.NewReader(conn)
	var a, b Reply
	for _, rep := range []*Reply{&a, &b} {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(line, rep)
	}
	if !strings.HasPrefix(a.Error, "bad request") || b.Admission == nil {
		t.Errorf("replies %+v %+v", a, b)
	}
}

func TestLoopNotRunning(t *testing.T) {
	loop, err := governor.New(governor.Config{Policy: &governor.Policy{}, Sources: []governor.Source{newSource()}, Actuator: govtest.NewActuator()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.sock")
	serve(t, Options{Path: path, Timeout: 50 * time.Millisecond}, backend(loop))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := (Client{Path: path}).Status(ctx); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("status of a stopped loop: %v", err)
	}
}

// client runs the test binary as uid/gid and returns what it printed.
func client(t *testing.T, path string, uid, gid uint32) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as %d:%d: %v\n%s", uid, gid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// A directory every user can traverse (t.TempDir is 0700).
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "governor-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	os.Chmod(d, 0o755)
	// The test binary must be reachable too; it lives under the go build
	// cache or a 0700 temp dir, so copy it.
	return d
}

func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	loop := runLoop(t)
	dir := openDir(t)
	bin := filepath.Join(dir, "client.test")
	if b, err := os.ReadFile(os.Args[0]); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	saved := os.Args[0]
	os.Args[0] = bin
	defer func() { os.Args[0] = saved }()

	// Root only. The socket is widened to 0666 here so that the peer
	// credential check itself is what refuses nobody.
	rootOnly := filepath.Join(dir, "root.sock")
	serve(t, Options{Path: rootOnly}, backend(loop))
	if err := os.Chmod(rootOnly, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := client(t, rootOnly, 65534, 65534); !strings.HasPrefix(out, "ERR: permission denied") {
		t.Errorf("nobody on a root-only socket: %q", out)
	}
	if out := client(t, rootOnly, 0, 0); !strings.HasPrefix(out, "OK:") {
		t.Errorf("root: %q", out)
	}

	// With a group: mode 0660, group members get in, others do not.
	grp := filepath.Join(dir, "group.sock")
	serve(t, Options{Path: grp, Group: "65534"}, backend(loop))
	fi, err := os.Stat(grp)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("group socket: mode %v gid %d", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	if out := client(t, grp, 65534, 65534); !strings.HasPrefix(out, "OK:") {
		t.Errorf("group member: %q", out)
	}
	os.Chmod(grp, 0o666)
	if out := client(t, grp, 65533, 65533); !strings.HasPrefix(out, "ERR: permission denied") {
		t.Errorf("not a group member: %q", out)
	}
}

// holdEnv names the socket a re-executed test binary floods: it opens
// holdTries connections, sends an empty line on each held one every 50 ms,
// prints "held N busy M: first busy reply" and keeps them until its stdin
// closes.
const (
	holdEnv   = "GOVERNOR_CONTROL_TEST_HOLD"
	holdTries = 20
)

func holdConnections(path string) {
	var held []net.Conn
	busy, first := 0, ""
	for range holdTries {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println("ERR:", err)
			return
		}
		// A slot-less client is answered at once, without a request.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.SetReadDeadline(time.Time{})
		if err == nil {
			busy++
			if first == "" {
				first = strings.TrimSpace(line)
			}
			c.Close()
			continue
		}
		held = append(held, c)
	}
	fmt.Printf("held %d busy %d: %s\n", len(held), busy, first)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			for _, c := range held {
				c.Write([]byte("\n"))
			}
		}
	}
}

// Issue "Trust boundaries" case 14: clients that keep sending empty lines
// held every slot for ever (the idle deadline was reset by each line), and
// root's admission got no answer; clients turned away were closed without
// a word. Now a user of the socket's group gets at most maxPerUID slots,
// root always finds one, a client turned away is told "busy", and a
// connection's lifetime is not extended by input.
func TestConnectionSlots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	loop := runLoop(t)
	dir := openDir(t)
	bin := filepath.Join(dir, "client.test")
	if b, err := os.ReadFile(os.Args[0]); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "group.sock")
	srv := serve(t, Options{Path: path, Group: "65534"}, backend(loop))

	// nobody, a member of the socket's group, floods it.
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	report, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("flooding client: %v", err)
	}
	var held, busy int
	var first string
	fmt.Sscanf(report, "held %d busy %d:", &held, &busy)
	if _, after, ok := strings.Cut(report, ": "); ok {
		first = strings.TrimSpace(after)
	}
	if held != maxPerUID || busy != holdTries-maxPerUID {
		t.Errorf("one uid flooding: %q, want %d held and the rest turned away", report, maxPerUID)
	}
	var rep Reply
	if err := json.Unmarshal([]byte(first), &rep); err != nil || !strings.HasPrefix(rep.Error, ErrBusy+": ") || !strings.Contains(rep.Error, "uid 65534") {
		t.Errorf("reply to a client turned away: %q (%v), want a JSON error line starting %q", first, err, ErrBusy)
	}

	// Root still gets answers while they are held, and the CLI's client
	// shows a turned-away reply as an error saying busy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := (Client{Path: path}).Admission(ctx); err != nil {
		t.Fatalf("root's admission while another user floods the socket: %v", err)
	}
	// Its slot is given back when the server reads the client's close,
	// which may come after the dials below are accepted: wait for it, or
	// the last of them is turned away and the 17th is served.
	waitOpen(t, srv, maxPerUID)
	var mine []net.Conn
	defer func() {
		for _, c := range mine {
			c.Close()
		}
	}()
	for range maxConns - maxPerUID {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, c)
	}
	// Once the server has accounted for them, the 17th is turned away.
	waitOpen(t, srv, maxConns)
	_, err = (Client{Path: path}).Admission(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), ErrBusy+": ") || !strings.Contains(err.Error(), "16 connections open") {
		t.Fatalf("17th connection: %v, want a busy error", err)
	}
}

// waitOpen waits until s has n connections open.
func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", open, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection's lifetime is fixed when it is accepted: input (here an
// empty line every 20 ms) does not extend it.
func TestConnectionLifetime(t *testing.T) {
	loop := runLoop(t)
	path := filepath.Join(t.TempDir(), "c.sock")
	serve(t, Options{Path: path, ConnLife: 300 * time.Millisecond}, backend(loop))
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, c); closed <- err }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Errorf("closed after %v, before its lifetime", d)
			}
			return
		case <-tick.C:
			if time.Since(start) > 5*time.Second {
				t.Fatal("a client sending empty lines kept its connection past the 300 ms lifetime")
			}
			c.Write([]byte("\n"))
		}
	}
}
