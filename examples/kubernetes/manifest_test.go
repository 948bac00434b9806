// Package kubernetes holds the Kubernetes example manifests; its test
// decodes them with the Kubernetes API types.
package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/policies"
)

// binary is where the image (cmd/governor-image) puts the governor.
const binary = "/usr/bin/governor"

// newObject returns an empty object of the manifest's apiVersion and kind.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	}
	return nil, fmt.Errorf("no API type known for apiVersion %q kind %q (add it to newObject)", apiVersion, kind)
}

// decodeAll decodes every YAML document of a manifest strictly: a field
// the API type does not have, or one given twice, is an error.
func decodeAll(name string, data []byte) ([]any, error) {
	var objs []any
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", name, i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", name, i, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" && len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, err := newObject(tm.APIVersion, tm.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", name, i, err)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %v", name, i, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
}

// TestManifests decodes every manifest in this directory with the real
// API types and checks what makes the DaemonSet start: the policies in
// the ConfigMap load, the --config directory is that ConfigMap mounted
// read-only, the probe is the cheap one, requests equal limits.
func TestManifests(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var daemonSets []*appsv1.DaemonSet
	configMaps := map[string]*corev1.ConfigMap{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *appsv1.DaemonSet:
				daemonSets = append(daemonSets, o)
			case *corev1.ConfigMap:
				configMaps[o.Namespace+"/"+o.Name] = o
				for key, src := range o.Data {
					if !strings.HasSuffix(key, ".hcl") {
						continue
					}
					r := policies.LoadSource(f+": ConfigMap "+o.Name+": "+key, []byte(src))
					if r.Diags.HasErrors() {
						t.Errorf("%v", r.Diags)
						continue
					}
					checkClasses(t, key, r.Policy)
				}
			}
		}
	}
	if len(daemonSets) == 0 {
		t.Fatal("no DaemonSet in the manifests")
	}
	for _, ds := range daemonSets {
		checkDaemonSet(t, ds, configMaps)
	}
}

func checkDaemonSet(t *testing.T, ds *appsv1.DaemonSet, configMaps map[string]*corev1.ConfigMap) {
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		t.Fatalf("DaemonSet %s has no containers", ds.Name)
	}
	for _, c := range spec.Containers {
		if len(c.Command) > 0 {
			t.Errorf("container %s: command %q: the image's entrypoint is %s; give args only", c.Name, c.Command, binary)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
			if req.IsZero() || req.Cmp(lim) != 0 {
				t.Errorf("container %s: %s request %v, limit %v: want equal, non-zero (a Guaranteed pod, in the protected class)", c.Name, res, req.String(), lim.String())
			}
		}
		if p := c.LivenessProbe; p != nil {
			cmd := p.Exec.Command
			if len(cmd) < 2 || cmd[0] != binary || cmd[1] != "status" || !slices.Contains(cmd, "-n") {
				t.Errorf("container %s: liveness probe %q: want %s status -n N (a full status allocates ~190 MB at 10,000 cgroups)", c.Name, cmd, binary)
			}
		}
		for _, a := range c.Args {
			dir, ok := strings.CutPrefix(a, "--config=")
			if !ok {
				continue
			}
			var mount *corev1.VolumeMount
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].MountPath == dir {
					mount = &c.VolumeMounts[i]
				}
			}
			if mount == nil {
				t.Errorf("container %s: --config=%s is no volume mount", c.Name, dir)
				continue
			}
			// Written by kubelet as a 0777 directory: loadable only
			// read-only (policies.checkOwnership).
			if !mount.ReadOnly {
				t.Errorf("container %s: policy mount %s is not readOnly", c.Name, dir)
			}
			for _, v := range spec.Volumes {
				if v.Name != mount.Name {
					continue
				}
				if v.ConfigMap == nil {
					t.Errorf("volume %s is not a ConfigMap", v.Name)
					continue
				}
				if v.ConfigMap.DefaultMode == nil || *v.ConfigMap.DefaultMode&0o022 != 0 {
					t.Errorf("volume %s: defaultMode %v: want no group/other write bits", v.Name, v.ConfigMap.DefaultMode)
				}
				if configMaps[ds.Namespace+"/"+v.ConfigMap.Name] == nil {
					t.Errorf("volume %s: ConfigMap %s/%s is not in the manifests", v.Name, ds.Namespace, v.ConfigMap.Name)
				}
			}
		}
	}
}

// TestStrictDecode: the decoder refuses what the API server would drop or
// refuse, so TestManifests can fail.
func TestStrictDecode(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nbinaryDatas: {}\n", `unknown field "binaryDatas"`},
		{"misplaced field", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          volumeMount: []\n", `unknown field "volumeMount"`},
		{"duplicate field", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nmetadata: {name: y}\n", "already set"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "no API type known"},
	} {
		_, err := decodeAll(tc.name, []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// classOf is the name of the class the loop gives a cgroup path ("" for
// none).
func classOf(p *governor.Policy, path string) string {
	if i := p.ClassOf(path); i >= 0 {
		return p.Classes[i].Name
	}
	return ""
}

// checkClasses: the example policy sorts the pod cgroups kubelet's systemd
// driver makes (Guaranteed pods directly under kubepods.slice, the others
// under their QoS slice) into services and batch; the governor's own pod
// is Guaranteed, so a service.
func checkClasses(t *testing.T, key string, p *governor.Policy) {
	const uid = "0f6c4a3e_51b2_4c1d_9e0a_6d1f2b3c4d5e"
	const ctr = "cri-containerd-4b1f0c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b.scope"
	for path, want := range map[string]string{
		"kubepods.slice/kubepods-pod" + uid + ".slice":                                      "services",
		"kubepods.slice/kubepods-pod" + uid + ".slice/" + ctr:                               "services",
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice":   "batch",
		"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid + ".slice": "batch",
		// Batch pods are governed as a whole, their containers not one by one.
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/" + ctr: "",
		"kubepods.slice": "",
		"kubepods.slice/kubepods-burstable.slice": "",
		"system.slice/kubelet.service":            "",
	} {
		if got := classOf(p, path); got != want {
			t.Errorf("%s: %s: class %q, want %q", key, path, got, want)
		}
	}
}
