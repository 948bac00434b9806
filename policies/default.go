package policies

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/governor-dev/governor/governor"
)

//go:embed default.hcl
var defaultSource []byte

// DefaultSource returns the text of the built-in default policy.
func DefaultSource() []byte {
	return append([]byte(nil), defaultSource...)
}

// Default compiles the built-in default policy (default.hcl, embedded). It
// returns a new Policy on every call. It panics only if the embedded file is
// broken, which TestDefault rules out.
func Default() *governor.Policy {
	r := LoadSource("default.hcl", defaultSource)
	if r.Diags.HasErrors() {
		var b strings.Builder
		_ = r.WriteDiagnostics(&b, false)
		panic(fmt.Sprintf("policies: built-in default policy does not compile:\n%s", b.String()))
	}
	return r.Policy
}
