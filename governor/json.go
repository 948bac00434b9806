package governor

import (
	"bytes"
	"encoding/json"
	"time"
)

// The JSON form of what the control socket and `governor ... --json`
// print: snake_case keys and durations as seconds (a float), one style for
// the whole reply (docs/OPERATIONS.md, "JSON output"). Types with only
// plain fields carry struct tags; these have durations and are encoded
// here, so their Go field types stay time.Duration.

type stepResultJSON struct {
	Time     time.Time `json:"time"`
	Duration float64   `json:"duration_seconds"`
	Cgroups  int       `json:"cgroups"`
	Actions  int       `json:"actions"`
	Errors   int       `json:"errors"`
}

// MarshalJSON encodes the step with its duration in seconds.
func (r StepResult) MarshalJSON() ([]byte, error) {
	return marshal(stepResultJSON{Time: r.Time, Duration: r.Duration.Seconds(), Cgroups: r.Cgroups, Actions: r.Actions, Errors: r.Errors})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *StepResult) UnmarshalJSON(b []byte) error {
	var j stepResultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = StepResult{Time: j.Time, Duration: seconds(j.Duration), Cgroups: j.Cgroups, Actions: j.Actions, Errors: j.Errors}
	return nil
}

type admissionVerdictJSON struct {
	Accepting  bool                 `json:"accepting"`
	Since      time.Time            `json:"since"`
	Reason     string               `json:"reason"`
	Origin     string               `json:"origin"`
	Conditions []AdmissionCondition `json:"conditions"`
}

// MarshalJSON encodes the verdict with snake_case keys.
func (v AdmissionVerdict) MarshalJSON() ([]byte, error) {
	return marshal(admissionVerdictJSON(v))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (v *AdmissionVerdict) UnmarshalJSON(b []byte) error {
	var j admissionVerdictJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = AdmissionVerdict(j)
	return nil
}

type admissionConditionJSON struct {
	Subject   string  `json:"subject"`
	Signal    string  `json:"signal"`
	Unit      string  `json:"unit"`
	Op        string  `json:"op"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	For       float64 `json:"for_seconds"`
	Present   bool    `json:"present"`
	Holding   bool    `json:"holding"`
	Headroom  float64 `json:"headroom"`
}

// MarshalJSON encodes the condition with its duration in seconds.
func (c AdmissionCondition) MarshalJSON() ([]byte, error) {
	return marshal(admissionConditionJSON{Subject: c.Subject, Signal: c.Signal, Unit: c.Unit, Op: c.Op, Value: c.Value,
		Threshold: c.Threshold, For: c.For.Seconds(), Present: c.Present, Holding: c.Holding, Headroom: c.Headroom})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *AdmissionCondition) UnmarshalJSON(b []byte) error {
	var j admissionConditionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = AdmissionCondition{Subject: j.Subject, Signal: j.Signal, Unit: j.Unit, Op: j.Op, Value: j.Value,
		Threshold: j.Threshold, For: seconds(j.For), Present: j.Present, Holding: j.Holding, Headroom: j.Headroom}
	return nil
}

// seconds converts a float of seconds back to a Duration, rounded to the
// nanosecond.
func seconds(s float64) time.Duration {
	return time.Duration(s*float64(time.Second) + 0.5)
}

// marshal encodes v leaving <, > and & as they are: an encoder with
// SetEscapeHTML(false) does not undo the escapes of a json.Marshal made
// inside a MarshalJSON method.
func marshal(v interface{}) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
