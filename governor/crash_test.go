package governor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
)

// The crash test runs a real Loop (cgroup.Source, cgroup.Actuator, state
// file) in a child process against a fixture cgroupfs tree, SIGKILLs it in
// the middle of a batch of writes, and then recovers with a fresh Loop in
// the parent. The child's actuator is the real one, wrapped only to stop
// (forever) at the Nth write after telling the parent: the kernel cannot be
// made to hang on a chosen write, and a FIFO would also hang the read the
// loop does before writing.

const crashChildEnv = "GOVERNOR_CRASH_CHILD"

const crashJobs = 6

func crashPolicy() *governor.Policy {
	return &governor.Policy{
		Classes: []governor.Class{{Name: "batch", Match: []string{"batch.slice/*"}, Protected: true}},
		Protect: []governor.ProtectController{{Name: "keep", Target: "batch", Low: 1 << 30}},
	}
}

// crashFixture builds root/batch.slice/job{0..crashJobs-1}, each with
// memory.low "0" and cgroup.events.
func crashFixture(t *testing.T) (root, proc string) {
	dir := t.TempDir()
	root, proc = filepath.Join(dir, "cg"), filepath.Join(dir, "proc")
	if err := os.MkdirAll(proc, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < crashJobs; i++ {
		d := filepath.Join(root, "batch.slice", fmt.Sprintf("job%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"memory.low": "0\n", "cgroup.events": "populated 1\nfrozen 0\n"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "batch.slice", "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, proc
}

// stallingActuator is the real Actuator, except that its Nth Write prints
// "stalled" and never returns.
type stallingActuator struct {
	governor.Actuator
	n      int32
	writes atomic.Int32
}

func (s *stallingActuator) Write(ctx context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	if s.writes.Add(1) == s.n {
		fmt.Println("stalled", cg.Path)
		select {}
	}
	return s.Actuator.Write(ctx, cg, k, v)
}

func crashLoop(root, proc, state string, act governor.Actuator, log hclog.Logger) (*governor.Loop, error) {
	return governor.New(governor.Config{
		Policy:       crashPolicy(),
		Sources:      []governor.Source{cgroup.NewSource(root, cgroup.SourceOptions{ProcPressureDir: proc})},
		Actuator:     act,
		Logger:       log,
		StatePath:    state,
		Caps:         governor.Capabilities{Root: root, Controllers: map[string]bool{"memory": true}},
		WriteTimeout: time.Hour, // the stall must not end as a timeout
	})
}

// crashChild is the child's side: one Step that stalls at write N.
func crashChild() {
	root, proc, state := os.Getenv("CRASH_ROOT"), os.Getenv("CRASH_PROC"), os.Getenv("CRASH_STATE")
	n, _ := strconv.Atoi(os.Getenv("CRASH_N"))
	act := &stallingActuator{Actuator: cgroup.NewActuator(root, nil), n: int32(n)}
	l, err := crashLoop(root, proc, state, act, hclog.New(&hclog.LoggerOptions{Output: os.Stderr}))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	if err := l.Step(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("done")
	select {} // the parent kills it either way
}

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
	}
	os.Exit(m.Run())
}

func TestSIGKILLMidBatchRecovers(t *testing.T) {
	// n: the write that stalls (crashJobs+1: none does; the batch
	// completes and the process dies before Close).
	for _, n := range []int{1, 2, 4, crashJobs, crashJobs + 1} {
		t.Run(fmt.Sprintf("stall at write %d", n), func(t *testing.T) {
			root, proc := crashFixture(t)
			state := filepath.Join(t.TempDir(), "state.json")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashChildEnv+"=1", "CRASH_ROOT="+root, "CRASH_PROC="+proc,
				"CRASH_STATE="+state, "CRASH_N="+strconv.Itoa(n))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				sc.Scan()
				line <- sc.Text()
			}()
			select {
			case l := <-line:
				if !strings.HasPrefix(l, "stalled") && l != "done" {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("child: %q\n%s", l, stderr.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child never reached write %d\n%s", n, stderr.String())
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("child exit: %v", err)
			}

			// Every knob the child changed is named in the state file.
			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatalf("no state file after a crash mid-batch: %v", err)
			}
			var sf struct {
				Entries []governor.StateEntry `json:"entries"`
			}
			if err := json.Unmarshal(b, &sf); err != nil {
				t.Fatalf("state file torn by SIGKILL: %v\n%s", err, b)
			}
			recorded := map[string]bool{}
			for _, e := range sf.Entries {
				recorded[e.Path] = true
			}
			changed := 0
			for i := 0; i < crashJobs; i++ {
				p := fmt.Sprintf("batch.slice/job%d", i)
				if knob(t, root, p) != "0" {
					changed++
					if !recorded[p] {
						t.Errorf("%s changed but not in the state file", p)
					}
				}
			}
			if want := min(n-1, crashJobs); changed != want {
				t.Errorf("%d knobs changed before the kill, want %d", changed, want)
			}
			if len(sf.Entries) != crashJobs {
				t.Errorf("state file has %d entries, want all %d of the batch", len(sf.Entries), crashJobs)
			}

			// A fresh loop with no rule for them any more restores every
			// one; with the same policy it re-adopts them and restores
			// them on Close.
			var logs strings.Builder
			log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
			l, err := crashLoop(root, proc, state, cgroup.NewActuator(root, nil), log)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Recover(); err != nil {
				t.Fatal(err)
			}
			if err := l.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatalf("close: %v\n%s", err, logs.String())
			}
			for i := 0; i < crashJobs; i++ {
				p := fmt.Sprintf("batch.slice/job%d", i)
				if got := knob(t, root, p); got != "0" {
					t.Errorf("%s memory.low = %q after recovery, want the original 0\n%s", p, got, logs.String())
				}
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("state file left after everything was restored: %v", err)
			}
			if strings.Contains(logs.String(), "[ERROR]") {
				t.Errorf("recovery logged errors:\n%s", logs.String())
			}
		})
	}
}

func knob(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel, "memory.low"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
