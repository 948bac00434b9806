package bpf

import (
	"reflect"
	"testing"

	"github.com/governor-dev/governor/governor"
)

// The governor's PreemptedBy leaves out self-preemption and the CPU going
// idle, and they take no place among the MaxPreemptors kept.
func TestPreemptors(t *testing.T) {
	const victim = governor.CgroupID(7)
	list := []Offender{{Cgroup: victim, PerSecond: 900}, {Cgroup: 0, PerSecond: 800}}
	var want []governor.Preemptor
	for i := 0; i < governor.MaxPreemptors+2; i++ {
		o := Offender{Cgroup: governor.CgroupID(100 + i), PerSecond: float64(100 - i)}
		list = append(list, o)
		if i < governor.MaxPreemptors {
			want = append(want, governor.Preemptor{Cgroup: o.Cgroup, PerSecond: o.PerSecond})
		}
	}
	if got := preemptors(victim, list); !reflect.DeepEqual(got, want) {
		t.Errorf("preemptors:\n got %+v\nwant %+v", got, want)
	}
	if got := preemptors(victim, list[:2]); got != nil {
		t.Errorf("only self and idle: %+v, want nil", got)
	}
}
