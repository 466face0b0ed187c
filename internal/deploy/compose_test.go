package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	tcli "github.com/tributary-dev/tributary/internal/cli"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/metrics"
)

const root = "../.."

// load reads docker-compose.yml with the loader docker compose itself uses, every profile
// on, and no environment of the machine running the test.
func load(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithProfiles([]string{"tools", "ops"}), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// moduleVersion is the version go.mod requires of a module, without its "v" (test
// binaries carry no dependency list of their own).
func moduleVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + ` v(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

// oneShot says whether a service runs to completion (set-up steps, tools) rather than
// staying up.
func oneShot(s types.ServiceConfig) bool {
	return strings.HasPrefix(s.Restart, "on-failure") || s.Restart == "" || slices.Contains(s.Profiles, "tools")
}

func TestComposeServices(t *testing.T) {
	p := load(t)
	want := []string{"kafka", "kafka-ui", "postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui",
		"worker", "bridge", "api", "starter", "prometheus", "grafana-dashboards", "grafana"}
	for _, name := range want {
		service(t, p, name)
	}
	for _, s := range p.Services {
		for dep := range s.DependsOn {
			if _, err := p.GetService(dep); err != nil {
				t.Errorf("%s depends on unknown service %s", s.Name, dep)
			}
		}
		if s.Image == "" {
			t.Errorf("%s has no image", s.Name)
		}
	}
	// Temporal: the server and its admin tools at the embedded server's version, a UI of the
	// embedded UI's, no auto-setup image.
	server := moduleVersion(t, "go.temporal.io/server")
	for name, image := range map[string]string{
		"temporal":           "temporalio/server:" + server,
		"temporal-schema":    "temporalio/admin-tools:" + server,
		"temporal-namespace": "temporalio/admin-tools:" + server,
		"temporal-ui":        "temporalio/ui:" + moduleVersion(t, "github.com/temporalio/ui-server/v2"),
	} {
		if got := service(t, p, name).Image; got != image {
			t.Errorf("%s runs %s, want %s", name, got, image)
		}
	}
	for _, s := range p.Services {
		if strings.Contains(s.Image, "auto-setup") {
			t.Errorf("%s uses the deprecated auto-setup image", s.Name)
		}
	}
	// The set-up runs in order: schema, server, namespace, then the roles.
	needs := func(name, dep, cond string) {
		if got := service(t, p, name).DependsOn[dep].Condition; got != cond {
			t.Errorf("%s waits for %s %q, want %q", name, dep, got, cond)
		}
	}
	needs("temporal", "temporal-schema", types.ServiceConditionCompletedSuccessfully)
	needs("temporal-namespace", "temporal", types.ServiceConditionHealthy)
	for _, role := range []string{"worker", "bridge", "api"} {
		needs(role, "temporal-namespace", types.ServiceConditionCompletedSuccessfully)
		needs(role, "kafka", types.ServiceConditionHealthy)
		needs(role, "postgresql", types.ServiceConditionHealthy)
	}
	// The ops profile holds Prometheus and Grafana; the plain `up` does not start them.
	for _, name := range []string{"prometheus", "grafana", "grafana-dashboards"} {
		if !slices.Equal(service(t, p, name).Profiles, []string{"ops"}) {
			t.Errorf("%s is not in the ops profile only", name)
		}
	}
}

// Every image is pinned to a version; what stays up restarts unless stopped and has a
// health check.
func TestComposeImagesPinnedAndHealthy(t *testing.T) {
	p := load(t)
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+(\.[0-9]+)+$`)
	for _, s := range p.Services {
		if s.Build != nil {
			if s.Image != "tributary:local" {
				t.Errorf("%s builds this repository as %s, want tributary:local", s.Name, s.Image)
			}
			continue
		}
		if !pinned.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version", s.Name, s.Image)
		}
	}
	for _, s := range p.Services {
		if oneShot(s) {
			continue
		}
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s restarts %q, want unless-stopped", s.Name, s.Restart)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Disable {
			// The UI has no health endpoint of its own; nothing waits on it.
			if s.Name != "temporal-ui" {
				t.Errorf("%s has no health check", s.Name)
			}
		}
	}
}

// The roles' health check is the workers binary's own probe (the image has no curl): it
// passes against a server answering 200 and fails otherwise.
func TestRoleHealthCheckRuns(t *testing.T) {
	p := load(t)
	for _, name := range []string{"worker", "bridge", "api"} {
		test := service(t, p, name).HealthCheck.Test
		if len(test) != 4 || test[0] != "CMD" || test[1] != "/usr/local/bin/workers" || test[2] != "-probe" {
			t.Fatalf("%s health check %v, want the workers binary's -probe", name, test)
		}
		addr := service(t, p, name).Environment[config.EnvMetrics]
		if name == "api" {
			addr = service(t, p, name).Environment[config.EnvAPI]
		}
		_, port, _ := strings.Cut(*addr, ":")
		if !strings.Contains(test[3], "127.0.0.1:"+port+"/") {
			t.Errorf("%s probes %s, but serves on port %s", name, test[3], port)
		}
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil || !strings.Contains(string(dockerfile), "/usr/local/bin/") {
		t.Errorf("the Dockerfile does not install the binaries in /usr/local/bin: %v", err)
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
		}
	}))
	defer ok.Close()
	if err := tcli.Workers(context.Background(), []string{"-probe", ok.URL + "/metrics"}, nil, nil); err != nil {
		t.Errorf("probe of a healthy server: %v", err)
	}
	if err := tcli.Workers(context.Background(), []string{"-probe", ok.URL + "/missing"}, nil, nil); err == nil {
		t.Error("probe of a 404 passed")
	}
}

// Named volumes keep Kafka's log and PostgreSQL's data; every bind mount exists.
func TestComposeVolumes(t *testing.T) {
	p := load(t)
	for name, target := range map[string]string{"kafka": "/var/lib/kafka/data", "postgresql": "/var/lib/postgresql/data"} {
		found := false
		for _, v := range service(t, p, name).Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == target {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, v.Source)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("%s keeps %s in no named volume", name, target)
		}
	}
	if dirs := service(t, p, "kafka").Environment["KAFKA_LOG_DIRS"]; dirs == nil || *dirs != "/var/lib/kafka/data" {
		t.Error("Kafka's log directory is not the volume")
	}
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
				}
			}
		}
	}
}

// No host port is published twice, and each UI is where users look for it.
func TestComposePorts(t *testing.T) {
	p := load(t)
	owner := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			key := port.Published + "/" + port.Protocol
			if other, ok := owner[key]; ok {
				t.Errorf("host port %s is published by %s and %s", key, other, s.Name)
			}
			owner[key] = s.Name
		}
	}
	for port, name := range map[string]string{"8080/tcp": "kafka-ui", "8233/tcp": "temporal-ui", "8090/tcp": "api", "7233/tcp": "temporal", "9094/tcp": "kafka", "9090/tcp": "prometheus", "3000/tcp": "grafana"} {
		if owner[port] != name {
			t.Errorf("host port %s is %q's, want %s's", port, owner[port], name)
		}
	}
	// The dashboard links workflows to the Temporal UI where it is published.
	if v := service(t, p, "api").Environment[config.EnvTemporalUI]; v == nil || *v != "http://localhost:"+publishedUIPort(p) {
		t.Errorf("api: %s=%v, want the published Temporal UI", config.EnvTemporalUI, v)
	}
	// The Temporal UI listens on the port published for it.
	ui := service(t, p, "temporal-ui")
	if v := ui.Environment["TEMPORAL_UI_PORT"]; v == nil || ui.Ports[0].Target != 8233 || *v != "8233" {
		t.Errorf("the Temporal UI listens on %v, published %+v", v, ui.Ports)
	}
}

// The roles get every setting the code reads, with values it accepts.
func TestComposeRoleEnvironment(t *testing.T) {
	p := load(t)
	for _, name := range []string{"worker", "bridge", "api", "starter"} {
		env := service(t, p, name).Environment
		for _, key := range []string{config.EnvKafka, config.EnvTemporal, config.EnvNamespace, config.EnvDatabase, config.EnvPartitions, config.EnvJoinShards} {
			if env[key] == nil {
				t.Errorf("%s: %s not set", name, key)
			}
		}
		url := *env[config.EnvDatabase]
		if !db.IsPostgres(url) || !strings.Contains(url, "@postgresql:") {
			t.Errorf("%s: %s=%q, want the compose PostgreSQL", name, config.EnvDatabase, url)
		}
		for _, key := range []string{config.EnvKafka, config.EnvTemporal} {
			host := strings.SplitN(*env[key], ":", 2)[0]
			if _, err := p.GetService(host); err != nil {
				t.Errorf("%s: %s points at %s, which is not a service", name, key, host)
			}
		}
		for k, v := range env {
			t.Setenv(k, *v)
		}
		cfg, err := config.FromEnv()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	api := service(t, p, "api")
	addr := *api.Environment[config.EnvAPI]
	if _, port, ok := strings.Cut(addr, ":"); !ok || !strings.HasPrefix(addr, "0.0.0.0:") || fmt.Sprint(api.Ports[0].Target) != port {
		t.Errorf("api: %s=%q, ports %+v", config.EnvAPI, addr, api.Ports)
	}
	for name, role := range map[string]string{"worker": "worker", "bridge": "bridge", "api": "api"} {
		if cmd := service(t, p, name).Command; !slices.Equal([]string(cmd), []string{"-role", role}) {
			t.Errorf("%s runs %v, want -role %s", name, cmd, role)
		}
	}
	if n := service(t, p, "worker").Deploy; n == nil || n.Replicas == nil || *n.Replicas < 2 {
		t.Error("the worker role does not run replicas")
	}
}

// Temporal in compose runs with the embedded server's dynamic configuration, on the two
// databases the schema step sets up, and exposes metrics where Prometheus scrapes them.
func TestComposeTemporal(t *testing.T) {
	p := load(t)
	tmp := service(t, p, "temporal")
	var file string
	for _, v := range tmp.Volumes {
		if strings.HasSuffix(v.Target, "/dynamicconfig/tributary.yaml") {
			file = v.Source
		}
	}
	if path := tmp.Environment["DYNAMIC_CONFIG_FILE_PATH"]; file == "" || path == nil || !strings.HasSuffix(*path, "dynamicconfig/tributary.yaml") {
		t.Fatalf("the server reads no mounted dynamic config (file %q, path %v)", file, path)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dyn map[string][]struct {
		Value any `yaml:"value"`
	}
	if err := yaml.Unmarshal(b, &dyn); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	got := map[string]any{}
	for k, v := range dyn {
		if len(v) != 1 {
			t.Errorf("%s: %d values", k, len(v))
			continue
		}
		got[strings.ToLower(k)] = v[0].Value
	}
	want := embedded.DynamicConfig()
	if len(got) != len(want) {
		t.Errorf("compose sets %d dynamic config keys, the embedded server %d", len(got), len(want))
	}
	for k, v := range want {
		if fmt.Sprint(got[strings.ToLower(k)]) != fmt.Sprint(v) {
			t.Errorf("dynamic config %s: compose %v, embedded %v", k, got[strings.ToLower(k)], v)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "deploy", "temporal", "setup-schema.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"DBNAME", "VISIBILITY_DBNAME"} {
		if v := tmp.Environment[key]; v == nil || !strings.Contains(string(script), *v+":") {
			t.Errorf("the server's %s is not a database the schema step sets up", key)
		}
	}
	if v := tmp.Environment["PROMETHEUS_ENDPOINT"]; v == nil || !strings.HasSuffix(*v, ":8000") {
		t.Error("the server exposes no Prometheus endpoint on 8000")
	}
}

// Prometheus scrapes each role where it serves /metrics, and the Tributary dashboard only
// charts families the code defines.
func TestComposeOps(t *testing.T) {
	p := load(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
			DNSSD   []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
			Static []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNSSD {
			for _, n := range d.Names {
				targets[fmt.Sprintf("%s:%d", n, d.Port)] = true
			}
		}
		for _, s := range sc.Static {
			for _, tg := range s.Targets {
				targets[tg] = true
			}
		}
	}
	for _, name := range []string{"worker", "bridge"} {
		_, port, _ := strings.Cut(*service(t, p, name).Environment[config.EnvMetrics], ":")
		if !targets[name+":"+port] {
			t.Errorf("Prometheus does not scrape %s on %s", name, port)
		}
	}
	_, apiPort, _ := strings.Cut(*service(t, p, "api").Environment[config.EnvAPI], ":")
	for _, tg := range []string{"api:" + apiPort, "temporal:8000"} {
		if !targets[tg] {
			t.Errorf("Prometheus does not scrape %s", tg)
		}
	}
	dash, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "tributary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("tributary.json: %v", err)
	}
	family := regexp.MustCompile(`tributary_[a-z_]+`)
	charted := map[string]bool{}
	for _, panel := range d.Panels {
		for _, tg := range panel.Targets {
			for _, name := range family.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(name, "_bucket")
				if !slices.Contains(metrics.Names(), base) {
					t.Errorf("panel %q charts %s, which the code does not define", panel.Title, name)
				}
				charted[base] = true
			}
		}
	}
	for _, n := range metrics.Names() {
		if !charted[n] {
			t.Errorf("no panel charts %s", n)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "fetch-temporal-dashboards.sh"))
	if err != nil || !regexp.MustCompile(`[0-9a-f]{40}/sdk/`).Match(script) || !regexp.MustCompile(`[0-9a-f]{40}/server/`).Match(script) {
		t.Errorf("Temporal's SDK and server dashboards are not fetched at a pinned commit: %v", err)
	}
}

func TestDockerfileBuildsWithCgo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=1 go build -o /out/workers ./workers", "./starter", "ENTRYPOINT"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	init, err := os.ReadFile(filepath.Join(root, "deploy", "postgres-init.sql"))
	if err != nil || !strings.Contains(string(init), "CREATE DATABASE tributary") {
		t.Errorf("deploy/postgres-init.sql does not create the results database: %v", err)
	}
}

// publishedUIPort is the host port the Temporal UI is published on.
func publishedUIPort(p *types.Project) string {
	s, err := p.GetService("temporal-ui")
	if err != nil || len(s.Ports) == 0 {
		return ""
	}
	return s.Ports[0].Published
}
