package cgroup

import (
	"time"

	"github.com/governor-dev/governor/governor"
)

// Armer arms the loop's PSI triggers (governor.Armer) on Triggers: a
// cgroup's trigger goes on its <resource>.pressure file beneath Root,
// resolved by PressureFile (no "..", no symlinks), the root cgroup's on
// /proc/pressure/<resource>.
type Armer struct {
	Triggers *Triggers
	Root     string
}

var _ governor.Armer = Armer{}

// Arm implements governor.Armer.
func (a Armer) Arm(cg governor.Ref, resource string, full bool, stall, window time.Duration) error {
	path, err := PressureFile(a.Root, cg, resource)
	if err != nil {
		return err
	}
	_, err = a.Triggers.Add(cg, path, full, stall, window)
	return err
}

// Disarm implements governor.Armer.
func (a Armer) Disarm(id governor.CgroupID) { a.Triggers.Remove(id) }
