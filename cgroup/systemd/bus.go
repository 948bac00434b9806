package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Bus is the part of systemd's D-Bus API the Actuator uses. Every call is
// bounded by its context.
type Bus interface {
	// ControlGroup returns the cgroup path systemd reports for a unit
	// ("/system.slice/web.service"), or "" if no such unit is loaded or it
	// has no cgroup. unitType is "Service", "Scope" or "Slice".
	ControlGroup(ctx context.Context, unit, unitType string) (string, error)
	// SetUnitProperties sets properties at runtime (lost at reboot, kept
	// across daemon-reload).
	SetUnitProperties(ctx context.Context, unit string, props ...sddbus.Property) error
	FreezeUnit(ctx context.Context, unit string) error
	ThawUnit(ctx context.Context, unit string) error
	// KillUnit signals every process of the unit.
	KillUnit(ctx context.Context, unit string, signal int32) error
	Close()
}

// Reloader is the daemon-reload call (Manager.Reload), which Close makes
// after removing runtime drop-ins.
type Reloader interface {
	Reload(ctx context.Context) error
}

// Booted reports whether systemd is the init system (sd_booted).
func Booted() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// Dial connects to systemd: its private socket first (root only, works
// without a D-Bus daemon), then the system bus. ctx bounds the dial only:
// the connection lives until Close.
func Dial(ctx context.Context) (Bus, error) {
	// The D-Bus library ties a connection to the context it was dialled
	// with, so dial with one that lives as long as the connection and
	// give up on it if ctx ends first.
	life, cancel := context.WithCancel(context.Background())
	type result struct {
		c   *sddbus.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sddbus.NewSystemdConnectionContext(life)
		if err != nil {
			var err2 error
			if c, err2 = sddbus.NewSystemConnectionContext(life); err2 != nil {
				err = fmt.Errorf("connect to systemd: private socket: %v; system bus: %w", err, err2)
			} else {
				err = nil
			}
		}
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		return conn{c: r.c, cancel: cancel}, nil
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("connect to systemd: %w", ctx.Err())
	}
}

type conn struct {
	c      *sddbus.Conn
	cancel context.CancelFunc
}

func (b conn) ControlGroup(ctx context.Context, unit, unitType string) (string, error) {
	p, err := b.c.GetUnitTypePropertyContext(ctx, unit, unitType, "ControlGroup")
	if err != nil {
		if de, ok := dbusErr(err); ok && (de.Name == "org.freedesktop.systemd1.NoSuchUnit" || de.Name == "org.freedesktop.DBus.Error.UnknownObject") {
			return "", nil
		}
		return "", err
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

func (b conn) UnitProperty(ctx context.Context, unit, unitType, name string) (interface{}, error) {
	p, err := b.c.GetUnitTypePropertyContext(ctx, unit, unitType, name)
	if err != nil {
		return nil, err
	}
	return p.Value.Value(), nil
}

// SystemdVersion asks the manager's Version property. The library's call
// takes no context, so it runs aside and is given up on when ctx ends.
func (b conn) SystemdVersion(ctx context.Context) (int, error) {
	type res struct {
		v   string
		err error
	}
	done := make(chan res, 1)
	go func() {
		v, err := b.c.GetManagerProperty("Version")
		done <- res{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, r.err
		}
		return parseSystemdVersion(r.v)
	case <-ctx.Done():
		return 0, fmt.Errorf("systemd Version: %w", ctx.Err())
	}
}

func (b conn) SetUnitProperties(ctx context.Context, unit string, props ...sddbus.Property) error {
	return b.c.SetUnitPropertiesContext(ctx, unit, true, props...)
}

func (b conn) FreezeUnit(ctx context.Context, unit string) error { return b.c.FreezeUnit(ctx, unit) }
func (b conn) ThawUnit(ctx context.Context, unit string) error   { return b.c.ThawUnit(ctx, unit) }

func (b conn) KillUnit(ctx context.Context, unit string, signal int32) error {
	return b.c.KillUnitWithTarget(ctx, unit, sddbus.All, signal)
}

func (b conn) Reload(ctx context.Context) error { return b.c.ReloadContext(ctx) }

func (b conn) Close() {
	b.c.Close()
	b.cancel()
}

// unsupported reports whether a D-Bus error means this systemd does not know
// the method or property (older versions): the Actuator then falls back to
// cgroupfs for that operation.
func unsupported(err error) bool {
	de, ok := dbusErr(err)
	if !ok {
		return false
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownProperty",
		"org.freedesktop.DBus.Error.PropertyReadOnly", "org.freedesktop.DBus.Error.NotSupported":
		return true
	case "org.freedesktop.DBus.Error.InvalidArgs":
		// "Cannot set property X, or unknown property."
		for _, b := range de.Body {
			if s, ok := b.(string); ok && containsFold(s, "unknown property") {
				return true
			}
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// dbusErr returns the error reply of a D-Bus call, if err is one.
func dbusErr(err error) (godbus.Error, bool) {
	var de godbus.Error
	if errors.As(err, &de) {
		return de, true
	}
	var dp *godbus.Error
	if errors.As(err, &dp) && dp != nil {
		return *dp, true
	}
	return godbus.Error{}, false
}
