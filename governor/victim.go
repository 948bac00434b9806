package governor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Last-resort victim selection: which cgroup of the class is frozen (and
// killed after the grace period), and the notification hook run before.

// VictimRank is what a last_resort block ranks its candidates by: the
// largest value is the victim.
type VictimRank uint8

const (
	// RankMemory ranks by memory.current (the default).
	RankMemory VictimRank = iota
	// RankSwap ranks by memory.swap.current.
	RankSwap
	// RankPressure ranks by the cgroup's memory pressure (memory.some
	// avg10): the cgroup that stalls most on memory.
	RankPressure
)

// RankNames are the policy spellings of the ranks, by value.
var RankNames = [...]string{RankMemory: "memory", RankSwap: "swap", RankPressure: "pressure"}

func (r VictimRank) String() string {
	if int(r) < len(RankNames) {
		return RankNames[r]
	}
	return fmt.Sprintf("rank(%d)", r)
}

// Signal is the signal a rank reads.
func (r VictimRank) Signal() Signal {
	switch r {
	case RankSwap:
		return MemorySwap
	case RankPressure:
		return MemorySomeAvg10
	}
	return MemoryCurrent
}

// Hint is an operator's mark on a cgroup for the victim choice: a
// preferred cgroup is chosen before any other whatever its rank, an
// avoided one only when no other cgroup qualifies.
type Hint int8

const (
	HintNone Hint = iota
	HintPrefer
	HintAvoid
)

func (h Hint) String() string {
	switch h {
	case HintPrefer:
		return "prefer"
	case HintAvoid:
		return "avoid"
	}
	return "none"
}

// HintReader reads a cgroup's victim hint (cgroup.XattrHints reads
// extended attributes of the cgroup directory). from names where the hint
// was found (the attribute), for the audit line.
type HintReader interface {
	VictimHint(cg Ref) (h Hint, from string, err error)
}

// HookRunner runs a last-resort hook command: argv without a shell, env as
// the whole environment, killed (its process group) when ctx ends. It
// returns the command's combined output (bounded) and its error.
type HookRunner func(ctx context.Context, argv, env []string) ([]byte, error)

// Hook timeouts: the default, and the most a policy may ask for (the loop
// waits for the hook, and systemd's watchdog for the loop).
const (
	DefaultHookTimeout = 5 * time.Second
	MaxHookTimeout     = 10 * time.Second
)

// candidate is a cgroup the last-resort trigger is active for.
type candidate struct {
	cg    *cgState
	ts    *triggerState
	value float64 // the rank's signal; -1 when the cgroup lacks it
	hint  Hint
	from  string // where the hint came from
}

// readHints reads the candidates' victim hints (once per choice, not on
// every tick).
func (l *Loop) readHints(cands []candidate) {
	if l.cfg.Hints == nil {
		return
	}
	for i := range cands {
		c := &cands[i]
		h, from, err := l.cfg.Hints.VictimHint(c.cg.ref)
		if err != nil {
			l.warnOnce("hint:"+c.cg.ref.Path, "cannot read the victim hint of a cgroup; ranking it without one", "cgroup", c.cg.ref.String(), "error", err)
			continue
		}
		c.hint, c.from = h, from
	}
}

// chooseVictim orders the candidates: preferred ones first, avoided ones
// last, and within each group the largest value of the rank's signal
// (ties: the smaller path, so the choice is reproducible). Their hints are
// what the loop read before deciding (readHints).
func chooseVictim(rank VictimRank, cands []candidate) *candidate {
	if len(cands) == 0 {
		return nil
	}
	sig := rank.Signal()
	for i := range cands {
		c := &cands[i]
		c.value = -1
		if v, ok := c.cg.sample.Get(sig); ok {
			c.value = v
		}
	}
	tier := func(h Hint) int {
		switch h {
		case HintPrefer:
			return 0
		case HintAvoid:
			return 2
		}
		return 1
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := &cands[i], &cands[j]
		if ta, tb := tier(a.hint), tier(b.hint); ta != tb {
			return ta < tb
		}
		if a.value != b.value {
			return a.value > b.value
		}
		return a.cg.ref.Path < b.cg.ref.Path
	})
	return &cands[0]
}

// describe is the victim's part of the audit line: the rank and its
// value, the hint, how many cgroups were considered.
func (c *candidate) describe(rank VictimRank, n int) string {
	sig := rank.Signal()
	val := "n/a"
	if c.value >= 0 {
		val = formatSignal(sig, c.value)
	}
	s := fmt.Sprintf("rank=%s %s=%s", rank, sig.Name(), val)
	if c.hint != HintNone {
		s += fmt.Sprintf(" hint=%s (%s)", c.hint, c.from)
	}
	return fmt.Sprintf("%s; chosen of %d candidates", s, n)
}

// runHook runs the policy's hook before the victim is frozen and returns
// its outcome for the audit line. The freeze goes ahead whatever the hook
// does: it is a notification, bounded by its timeout. Dry-run runs nothing.
func (l *Loop) runHook(ctx context.Context, c *LastResortController, victim Ref, reason string) string {
	if len(c.Hook) == 0 {
		return ""
	}
	if l.cfg.DryRun {
		return "hook not run (dry-run)"
	}
	timeout := c.HookTimeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	timeout = min(timeout, MaxHookTimeout)
	killAt := ""
	if c.Kill {
		killAt = l.clock.Now().Add(c.Grace).UTC().Format(time.RFC3339)
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"GOVERNOR_ACTION=freeze",
		"GOVERNOR_CONTROLLER=" + c.Name,
		"GOVERNOR_CGROUP=" + victim.String(),
		"GOVERNOR_CGROUP_PATH=" + filepath.Join(l.cfg.Caps.Root, victim.Path),
		"GOVERNOR_REASON=" + reason,
		"GOVERNOR_KILL_AT=" + killAt,
	}
	run := l.cfg.RunHook
	if run == nil {
		run = ExecHook
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	out, err := run(hctx, c.Hook, env)
	took := time.Since(start).Round(time.Millisecond)
	timedOut := hctx.Err() == context.DeadlineExceeded
	cancel()
	args := []interface{}{"controller", c.Name, "cgroup", victim.String(), "hook", strings.Join(c.Hook, " "), "took", took.String()}
	if o := strings.TrimSpace(string(out)); o != "" {
		args = append(args, "output", o)
	}
	switch {
	case timedOut:
		l.log.Warn("last-resort hook timed out; freezing anyway", append(args, "timeout", timeout.String())...)
		return fmt.Sprintf("hook timed out after %s", timeout)
	case err != nil:
		l.log.Warn("last-resort hook failed; freezing anyway", append(args, "error", err)...)
		return fmt.Sprintf("hook failed after %s: %v", took, err)
	}
	l.log.Info("last-resort hook ran", args...)
	return fmt.Sprintf("hook ok in %s", took)
}

// hookOutputMax bounds what is kept of a hook's output for the log.
const hookOutputMax = 1024

// ExecHook is the default HookRunner: argv[0] is run directly (no shell)
// in its own process group with stdin from /dev/null; when ctx ends the
// whole group is killed, and output still held open by a child it left
// behind is given up a second later.
func ExecHook(ctx context.Context, argv, env []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty hook command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	out := &limitedBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
