package main

import (
	"strings"
	"testing"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/policies"
)

// validate --host on a stock Debian 12 layout (cpu enabled by some unit, io
// not): batch-node.hcl's suppress acts without io.weight, exit 0; with
// neither cpu nor io and no systemd to enable them, exit 3.
func TestValidateHostReport(t *testing.T) {
	res := policies.Load([]string{"../../examples/batch-node.hcl"}, policies.Options{AllowInsecure: true})
	if res.Diags.HasErrors() {
		t.Fatal(res.Diags.Error())
	}
	stock := governor.Capabilities{Root: "/sys/fs/cgroup", Controllers: map[string]bool{"cpu": true, "memory": true, "pids": true}, Reclaim: true, Freeze: true, Kill: true}
	var out strings.Builder
	if rc := reportPlan(governor.Plan(res.Policy, stock, nil), stock.Root, &out); rc != 0 {
		t.Errorf("exit %d with cpu present:\n%s", rc, out.String())
	}
	if got := out.String(); !strings.Contains(got, `suppress "services-first" acts without io.weight`) || !strings.Contains(got, "IOAccounting=yes") {
		t.Errorf("report:\n%s", got)
	}
	delete(stock.Controllers, "cpu")
	out.Reset()
	if rc := reportPlan(governor.Plan(res.Policy, stock, nil), stock.Root, &out); rc != 3 {
		t.Errorf("exit %d with neither cpu nor io:\n%s", rc, out.String())
	}
	if !strings.Contains(out.String(), `suppress "services-first" cannot act here`) {
		t.Errorf("report:\n%s", out.String())
	}
}
