// deploylint checks the deployment files under deploy/ offline, with the
// parsers the real tools use:
//
//	deploylint dockerfile deploy/Dockerfile
//	    BuildKit's Dockerfile parser and the lint rules it applies while
//	    parsing instructions (part of `docker build --check`), then the image's own rules: multi-stage, every
//	    stage on Debian bookworm, the build stage runs the test command's
//	    scripts (deps.sh, package.sh), the final stage installs no build
//	    tools and runs as a non-root numeric user.
//	deploylint compose deploy/compose.yaml
//	    compose-go (the loader `docker compose` uses) with the Compose
//	    Specification schema, then: mongo:7, mongoguard built from
//	    deploy/Dockerfile, the incident demo, bind-mount sources that exist.
//	deploylint kubernetes deploy/kubernetes/sidecar.yaml [-policy-out FILE]
//	    every document decoded strictly (unknown or duplicate fields are
//	    errors) into the k8s.io/api types of its kind, then: an app container
//	    and a mongoguard sidecar, probes on /readyz and /healthz (HTTP, or exec
//	    asking the --admin-listen address), resource
//	    requests, the policy ConfigMap mounted as a directory (so updates
//	    arrive), the token Secret (in the file, or created by the kubectl
//	    command the file shows) mounted where --admin-token-file points.
//	    -policy-out writes the ConfigMap's policy.yaml so the caller can run
//	    `mongoguard validate` on it.
//	deploylint yaml FILE
//	    any YAML file, parsed.
//
// -json-out FILE writes what was parsed as JSON: the Dockerfile's final
// stage (entrypoint, cmd, env, user), the compose project as compose-go
// loaded it, the Kubernetes documents as decoded, the YAML file's value. The
// tests read the files through it, with the parsers the real tools use.
//
// Every problem is printed as FILE: message; the exit code is 1 if any.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

type checker struct {
	file     string
	problems int
}

func (c *checker) fail(format string, args ...any) {
	c.problems++
	fmt.Fprintf(os.Stderr, "%s: %s\n", c.file, fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) < 3 || len(os.Args)%2 == 0 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	c := &checker{file: os.Args[2]}
	out := map[string]string{}
	for i := 3; i+1 < len(os.Args); i += 2 {
		if os.Args[i] != "-policy-out" && os.Args[i] != "-json-out" {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		out[os.Args[i]] = os.Args[i+1]
	}
	var model any
	switch os.Args[1] {
	case "dockerfile":
		model = checkDockerfile(c)
	case "compose":
		model = checkCompose(c)
	case "kubernetes":
		model = checkKubernetes(c, out["-policy-out"])
	case "yaml":
		model = readYAML(c)
	default:
		fmt.Fprintf(os.Stderr, "unknown kind %q\n", os.Args[1])
		os.Exit(2)
	}
	if path := out["-json-out"]; path != "" && model != nil {
		data, err := json.MarshalIndent(model, "", "  ")
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			c.fail("-json-out: %v", err)
		}
	}
	if c.problems > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: ok\n", c.file)
}

const usage = "usage: deploylint dockerfile|compose|kubernetes|yaml FILE [-policy-out FILE] [-json-out FILE]"

// readYAML: any YAML file as JSON (what `deploylint yaml` writes with -json-out).
func readYAML(c *checker) any {
	data, err := os.ReadFile(c.file)
	if err != nil {
		c.fail("%v", err)
		return nil
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		c.fail("%v", err)
		return nil
	}
	return v
}

// ---- Dockerfile ----

var buildTools = regexp.MustCompile(`\b(build-essential|cmake|ninja-build|g\+\+|gcc|clang|[a-z0-9.+-]+-dev)\b`)

// What the final stage runs: the image's ENTRYPOINT, CMD (exec form, or
// ["/bin/sh", "-c", line] for the shell form), ENV and USER.
type imageModel struct {
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Env        map[string]string `json:"env"`
	User       string            `json:"user"`
}

func execForm(cmd instructions.ShellDependantCmdLine) []string {
	if cmd.PrependShell {
		return []string{"/bin/sh", "-c", strings.Join(cmd.CmdLine, " ")}
	}
	return cmd.CmdLine
}

func checkDockerfile(c *checker) any {
	data, err := os.ReadFile(c.file)
	if err != nil {
		c.fail("%v", err)
		return nil
	}
	result, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		c.fail("parse: %v", err)
		return nil
	}
	for _, w := range result.Warnings {
		c.fail("parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, description, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		c.fail("line %d: %s: %s", line, rule, msg)
	}})
	stages, _, err := instructions.Parse(result.AST, lint)
	if err != nil {
		c.fail("instructions: %v", err)
		return nil
	}
	if len(stages) < 2 {
		c.fail("want a multi-stage build (build stage + runtime stage), found %d stage(s)", len(stages))
		return nil
	}
	names := map[string]bool{}
	image := &imageModel{}
	ranDeps, ranPackage := false, false
	for i, st := range stages {
		if !strings.HasPrefix(st.BaseName, "debian:bookworm") {
			c.fail("stage %d (%s) is based on %q, want debian:bookworm*", i, st.Name, st.BaseName)
		}
		final := i == len(stages)-1
		var user string
		if final {
			image.Env = map[string]string{}
		}
		for _, cmd := range st.Commands {
			switch v := cmd.(type) {
			case *instructions.RunCommand:
				line := strings.Join(v.CmdLine, " ")
				if strings.Contains(line, "scripts/deps.sh") {
					ranDeps = true
				}
				if strings.Contains(line, "scripts/package.sh") {
					ranPackage = true
				}
				if final && buildTools.MatchString(line) {
					c.fail("final stage installs build tools: %q", buildTools.FindString(line))
				}
			case *instructions.CopyCommand:
				if v.From != "" && !names[v.From] {
					c.fail("COPY --from=%s names no earlier stage", v.From)
				}
			case *instructions.UserCommand:
				user = v.User
			case *instructions.EntrypointCommand:
				image.Entrypoint = execForm(v.ShellDependantCmdLine)
				image.Cmd = nil // ENTRYPOINT resets an earlier CMD
			case *instructions.CmdCommand:
				image.Cmd = execForm(v.ShellDependantCmdLine)
			case *instructions.EnvCommand:
				if final {
					for _, kv := range v.Env {
						image.Env[kv.Key] = kv.Value
					}
				}
			}
		}
		if final {
			image.User = user
			name := strings.SplitN(user, ":", 2)[0]
			switch {
			case user == "":
				c.fail("final stage has no USER: the container would run as root")
			case name == "root" || name == "0":
				c.fail("final stage runs as root (USER %s)", user)
			case !regexp.MustCompile(`^[0-9]+$`).MatchString(name):
				c.fail("final stage USER %s is not numeric: Kubernetes runAsNonRoot cannot verify it", user)
			}
		}
		if st.Name != "" {
			names[st.Name] = true
		}
	}
	if !ranDeps || !ranPackage {
		c.fail("the build must run scripts/deps.sh and scripts/package.sh (the test command's steps)")
	}
	return image
}

// ---- compose ----

// checkCompose returns the project as `docker compose config` would print it
// (paths resolved, every service's command a list).
func checkCompose(c *checker) any {
	abs, err := filepath.Abs(c.file)
	if err != nil {
		c.fail("%v", err)
		return nil
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		c.fail("%v", err)
		return nil
	}
	dir := filepath.Dir(abs)
	details := types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: data}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("mongoguard", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		c.fail("compose: %v", err)
		return nil
	}
	services := map[string]types.ServiceConfig{}
	for name, s := range project.Services {
		services[name] = s
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					c.fail("service %s mounts %s, which does not exist", name, v.Source)
				}
			}
		}
		if s.Build != nil {
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				c.fail("service %s builds from %s, which does not exist", name, df)
			}
		}
	}
	if s, ok := services["mongo"]; !ok || s.Image != "mongo:7" {
		c.fail("want a service mongo with image mongo:7")
	}
	if s, ok := services["mongoguard"]; !ok || s.Build == nil ||
		!strings.HasSuffix(s.Build.Dockerfile, "deploy/Dockerfile") {
		c.fail("want a service mongoguard built from deploy/Dockerfile")
	} else if !strings.Contains(strings.Join(s.Command, " "), "mongodb://mongo:27017") {
		c.fail("service mongoguard must point --upstream at the mongo service")
	}
	if s, ok := services["demo"]; !ok || !strings.Contains(strings.Join(s.Command, " "), "incident.py") {
		c.fail("want a service demo running deploy/demo/incident.py")
	}
	data, err = project.MarshalJSON()
	if err != nil {
		c.fail("compose: %v", err)
		return nil
	}
	return json.RawMessage(data)
}

// ---- Kubernetes ----

// checkKubernetes returns the documents as decoded into their k8s.io/api
// types (defaults not applied), in the file's order.
func checkKubernetes(c *checker, policyOut string) any {
	data, err := os.ReadFile(c.file)
	if err != nil {
		c.fail("%v", err)
		return nil
	}
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	var deployments []*appsv1.Deployment
	var documents []any
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			c.fail("document %d: %v", i+1, err)
			continue
		}
		var target any
		switch meta.APIVersion + "/" + meta.Kind {
		case "v1/ConfigMap":
			target = &corev1.ConfigMap{}
		case "v1/Secret":
			target = &corev1.Secret{}
		case "apps/v1/Deployment":
			target = &appsv1.Deployment{}
		default:
			c.fail("document %d: unexpected kind %s %s", i+1, meta.APIVersion, meta.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			c.fail("document %d (%s): %v", i+1, meta.Kind, err)
			continue
		}
		documents = append(documents, target)
		switch v := target.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *corev1.Secret:
			secrets[v.Name] = v
		case *appsv1.Deployment:
			deployments = append(deployments, v)
		}
	}
	if len(deployments) != 1 {
		c.fail("want exactly one Deployment, found %d", len(deployments))
		return nil
	}
	checkDeployment(c, deployments[0], configMaps, secrets, string(data), policyOut)
	return documents
}

func checkDeployment(c *checker, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap,
	secrets map[string]*corev1.Secret, text, policyOut string) {
	// A Secret may be left out of the file (a token must not be published),
	// provided the file says how to create it with that key.
	createdBy := func(name, key string) bool {
		return regexp.MustCompile(`kubectl create secret generic ` + regexp.QuoteMeta(name) +
			`\s.*--from-(literal|file)=` + regexp.QuoteMeta(key) + `=`).MatchString(text)
	}
	spec := d.Spec.Template.Spec
	if d.Spec.Selector == nil {
		c.fail("Deployment %s has no selector", d.Name)
	} else {
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				c.fail("selector %s=%s does not match the pod template's labels", k, v)
			}
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil && configMaps[v.ConfigMap.Name] == nil {
			c.fail("volume %s names ConfigMap %s, not in this file", v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil && secrets[v.Secret.SecretName] == nil &&
			!regexp.MustCompile(`kubectl create secret generic `+regexp.QuoteMeta(v.Secret.SecretName)+`\s`).MatchString(text) {
			c.fail("volume %s names Secret %s, which is neither in this file nor created by a kubectl command it shows",
				v.Name, v.Secret.SecretName)
		}
	}
	var guard *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "mongoguard" {
			guard = &spec.Containers[i]
		}
	}
	if guard == nil || len(spec.Containers) < 2 {
		c.fail("want an application container and a mongoguard sidecar in one pod")
		return
	}
	ports := map[string]int32{}
	for _, p := range guard.Ports {
		ports[p.Name] = p.ContainerPort
	}
	args := strings.Join(guard.Args, " ")
	flag := func(name string) string {
		m := regexp.MustCompile(name + ` (\S+)`).FindStringSubmatch(args)
		if m == nil {
			return ""
		}
		return m[1]
	}
	// An HTTP probe reaches the pod's IP, so it suits an admin endpoint on
	// the pod's interface; an exec probe runs in the container and must ask
	// the address --admin-listen gives (loopback) for the path.
	probe := func(what string, p *corev1.Probe, path string) {
		switch {
		case p != nil && p.HTTPGet != nil:
			if p.HTTPGet.Path != path {
				c.fail("mongoguard %s probe asks %s, want %s", what, p.HTTPGet.Path, path)
			}
			if name := p.HTTPGet.Port.StrVal; name != "" && ports[name] == 0 {
				c.fail("mongoguard %s probe names port %s, which the container does not declare", what, name)
			}
		case p != nil && p.Exec != nil:
			admin := flag("--admin-listen")
			asks, names := execProbeAsks(p.Exec.Command, admin, path)
			if !asks {
				c.fail("mongoguard %s probe runs %q, which does not ask %s, want %s", what,
					p.Exec.Command, path, path)
			}
			if !names {
				c.fail("mongoguard %s probe runs %q, which does not name --admin-listen %s", what,
					p.Exec.Command, admin)
			}
		default:
			c.fail("mongoguard has no %s probe (HTTP, or exec asking %s)", what, path)
		}
	}
	probe("readiness", guard.ReadinessProbe, "/readyz")
	probe("liveness", guard.LivenessProbe, "/healthz")
	if guard.Resources.Requests.Cpu().IsZero() || guard.Resources.Requests.Memory().IsZero() {
		c.fail("mongoguard needs cpu and memory requests")
	}
	mountOf := func(path string) (corev1.VolumeMount, bool) {
		for _, m := range guard.VolumeMounts {
			if filepath.Dir(path) == filepath.Clean(m.MountPath) {
				return m, true
			}
		}
		return corev1.VolumeMount{}, false
	}
	configPath := flag("--config")
	if m, ok := mountOf(configPath); !ok || volumes[m.Name].ConfigMap == nil {
		c.fail("--config %q is not in a mounted ConfigMap", configPath)
	} else if m.SubPath != "" {
		c.fail("the policy ConfigMap is mounted with subPath: updates would never arrive")
	} else if cm := configMaps[volumes[m.Name].ConfigMap.Name]; cm != nil {
		policy, ok := cm.Data[filepath.Base(configPath)]
		if !ok {
			c.fail("ConfigMap %s has no key %s", cm.Name, filepath.Base(configPath))
		} else if policyOut != "" {
			if err := os.WriteFile(policyOut, []byte(policy), 0o644); err != nil {
				c.fail("%v", err)
			}
		}
	}
	tokenPath := flag("--admin-token-file")
	if m, ok := mountOf(tokenPath); !ok || volumes[m.Name].Secret == nil {
		c.fail("--admin-token-file %q is not in a mounted Secret", tokenPath)
	} else {
		name, key := volumes[m.Name].Secret.SecretName, filepath.Base(tokenPath)
		if s := secrets[name]; s != nil {
			_, inString := s.StringData[key]
			_, inData := s.Data[key]
			if !inString && !inData {
				c.fail("Secret %s has no key %s", name, key)
			}
		} else if !createdBy(name, key) {
			c.fail("the kubectl command that creates Secret %s does not give it the key %s", name, key)
		}
	}
	if sc := guard.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail("mongoguard must run as non-root without privilege escalation")
	}
}

// execProbeAsks says whether an exec probe's command asks path of the admin
// endpoint at admin (host:port). `mongoguard ctl --admin URL ready|alive`
// asks /readyz or /healthz of URL; any other command must carry the path
// and the address among its arguments.
func execProbeAsks(command []string, admin, path string) (asks, names bool) {
	ctlPaths := map[string]string{"ready": "/readyz", "alive": "/healthz"}
	if len(command) >= 3 && strings.HasSuffix(command[0], "mongoguard") && command[1] == "ctl" {
		for i := 2; i+1 < len(command); i++ {
			if command[i] == "--admin" {
				url := command[i+1]
				names = admin != "" && (url == "http://"+admin || url == "https://"+admin)
			}
		}
		return ctlPaths[command[len(command)-1]] == path, names
	}
	for _, arg := range command {
		asks = asks || arg == path || (admin != "" && strings.HasSuffix(arg, admin+path))
		names = names || (admin != "" && strings.Contains(arg, admin))
	}
	return asks, names
}
