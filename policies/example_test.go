package policies_test

import (
	"fmt"
	"os"

	"github.com/governor-dev/governor/policies"
)

func ExampleLoadSource() {
	src := []byte(`
class "batch" { match = ["batch.slice/**"] }

reclaim "batch-footprint" {
  target = "batch"
  goal   = "5ms"
}
`)
	r := policies.LoadSource("policy.hcl", src)
	if r.Diags.HasErrors() {
		_ = r.WriteDiagnostics(os.Stdout, false)
		return
	}
	fmt.Println(r.Policy.Reclaim[0].Name)
	// Output:
	// Error: Invalid goal
	//
	//   on policy.hcl line 6, in reclaim "batch-footprint":
	//    6:   goal   = "5ms"
	//
	// goal: "5ms" is a duration, but memory.some.stall is measured in percent: write a percentage such as "5%".
	//
}

func ExampleDefault() {
	p := policies.Default()
	for _, c := range p.Classes {
		fmt.Println(c.Name, c.Match, "protected:", c.Protected)
	}
	// Output:
	// interactive [system.slice/** user.slice/**] protected: true
	// batch [batch.slice] protected: false
	// other [**] protected: true
}
