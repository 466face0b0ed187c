package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/db"
)

type compose struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     []string       `yaml:"command"`
		Entrypoint  []string       `yaml:"entrypoint"`
		DependsOn   map[string]any `yaml:"depends_on"`
		Environment map[string]any `yaml:"environment"`
		Ports       []string       `yaml:"ports"`
		Volumes     []string       `yaml:"volumes"`
	} `yaml:"services"`
}

func load(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestComposeServices(t *testing.T) {
	c := load(t)
	for _, name := range []string{"kafka", "postgresql", "temporal", "temporal-ui", "worker", "bridge", "api", "starter"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", "..", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s has neither image nor build", name)
		}
	}
	if !slices.Contains(c.Services["temporal-ui"].Ports, "8080:8080") {
		t.Error("the Temporal UI is not published on 8080")
	}
}

// The worker roles get every setting the code reads, with values it accepts.
func TestComposeWorkerEnvironment(t *testing.T) {
	c := load(t)
	for _, name := range []string{"worker", "bridge", "api", "starter"} {
		env := c.Services[name].Environment
		for _, key := range []string{config.EnvKafka, config.EnvTemporal, config.EnvNamespace, config.EnvDatabase, config.EnvPartitions, config.EnvJoinShards} {
			if env[key] == nil {
				t.Errorf("%s: %s not set", name, key)
			}
		}
		url, _ := env[config.EnvDatabase].(string)
		if !db.IsPostgres(url) || !strings.Contains(url, "@postgresql:") {
			t.Errorf("%s: %s=%q, want the compose PostgreSQL", name, config.EnvDatabase, url)
		}
		for _, key := range []string{config.EnvKafka, config.EnvTemporal} {
			host := strings.SplitN(env[key].(string), ":", 2)[0]
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s: %s points at %s, which is not a service", name, key, host)
			}
		}
		for k, v := range env {
			t.Setenv(k, v.(string))
		}
		cfg, err := config.FromEnv()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The API listens on every interface of its container, on the port compose publishes.
	api := c.Services["api"]
	addr, _ := api.Environment[config.EnvAPI].(string)
	if _, port, ok := strings.Cut(addr, ":"); !ok || !strings.HasPrefix(addr, "0.0.0.0:") || !slices.Contains(api.Ports, port+":"+port) {
		t.Errorf("api: %s=%q, ports %v", config.EnvAPI, addr, api.Ports)
	}
	for name, role := range map[string]string{"worker": "worker", "bridge": "bridge", "api": "api"} {
		if cmd := c.Services[name].Command; !slices.Equal(cmd, []string{"-role", role}) {
			t.Errorf("%s runs %v, want -role %s", name, cmd, role)
		}
	}
}

func TestDockerfileBuildsWithCgo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=1 go build -o /out/workers ./workers", "./starter", "ENTRYPOINT"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	init, err := os.ReadFile(filepath.Join("..", "..", "deploy", "postgres-init.sql"))
	if err != nil || !strings.Contains(string(init), "CREATE DATABASE tributary") {
		t.Errorf("deploy/postgres-init.sql does not create the results database: %v", err)
	}
}
