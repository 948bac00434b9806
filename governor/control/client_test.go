package control

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A daemon that hangs up or times out is named by its pid and uid, not by
// the temporary name its socket was bound under before the rename.
func TestClientErrorNamesPeer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control.sock")
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i == 0 {
				c.Close() // hang up without a reply
				continue
			}
			go func() { <-hold; c.Close() }() // never answer
		}
	}()
	want := fmt.Sprintf("(daemon pid %d, uid %d)", os.Getpid(), os.Getuid())
	_, err = Client{Path: path}.Status(context.Background())
	if err == nil || strings.Contains(err.Error(), ".tmp") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "closed the connection") {
		t.Errorf("hang-up: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Client{Path: path}.Status(ctx)
	if err == nil || strings.Contains(err.Error(), ".tmp") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("timeout: %v", err)
	}
}

// Without a control group the start-up line says root only, not group=-1.
func TestListeningLineWithoutGroup(t *testing.T) {
	var buf strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &buf})
	srv, err := Listen(Options{Path: filepath.Join(t.TempDir(), "c.sock"), Logger: log}, Backend{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	cancel()
	<-done
	if text := buf.String(); strings.Contains(text, "=-1") || !strings.Contains(text, `access="root only"`) {
		t.Errorf("listening line: %s", text)
	}
}
