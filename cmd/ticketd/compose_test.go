package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No container engine runs here, so docker-compose.yml is checked by reading it: three
// NATS nodes form one JetStream cluster, two ticketd replicas use all three with R3
// streams and the PostgreSQL read model, ticketd is configured through the same
// environment variables that parseConfig reads, no image names a registry host, and
// the KurrentDB service is documented.
func TestDockerCompose(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   []string          `yaml:"depends_on"`
		Build       any               `yaml:"build"`
		Volumes     []string          `yaml:"volumes"`
		Profiles    []string          `yaml:"profiles"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	replicas := []string{"ticketd-1", "ticketd-2"}
	for _, name := range append(append(slices.Clone(nodes), replicas...), "postgres", "kurrentdb") {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("service %q is missing", name)
		}
	}
	for name, s := range compose.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither an image nor a build", name)
		}
		// A registry host is a first path element with a dot or a port (ghcr.io/x,
		// localhost:5000/x); Docker Hub names (nats:2.12, eventstore/eventstore) have none.
		if first, _, found := strings.Cut(s.Image, "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") {
			t.Errorf("service %s: image %q names a registry host", name, s.Image)
		}
	}

	// The NATS cluster: JetStream on every node, distinct names and volumes, one
	// cluster name, routes to all three.
	names, volumes := map[string]bool{}, map[string]bool{}
	for _, node := range nodes {
		s := compose.Services[node]
		cmd := strings.Join(s.Command, " ")
		for _, want := range []string{"-js", "-sd /data", "--cluster_name ticketcore", "--cluster nats://0.0.0.0:6222"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("%s: command %q lacks %q", node, cmd, want)
			}
		}
		i := slices.Index(s.Command, "--routes")
		if i < 0 || i+1 >= len(s.Command) {
			t.Errorf("%s: no --routes", node)
		} else {
			for _, other := range nodes {
				if !strings.Contains(s.Command[i+1], "nats://"+other+":6222") {
					t.Errorf("%s: routes %q do not reach %s", node, s.Command[i+1], other)
				}
			}
		}
		if j := slices.Index(s.Command, "--name"); j < 0 || j+1 >= len(s.Command) || names[s.Command[j+1]] {
			t.Errorf("%s: no --name, or one another node has", node)
		} else {
			names[s.Command[j+1]] = true
		}
		for _, v := range s.Volumes {
			if volumes[v] {
				t.Errorf("%s shares volume %s with another node", node, v)
			}
			volumes[v] = true
		}
	}

	// The ticketd replicas: built here, on the three nodes with R3, on PostgreSQL.
	for _, name := range replicas {
		td := compose.Services[name]
		if td.Build == nil {
			t.Errorf("%s must be built from this repository", name)
		}
		url := td.Environment["TICKETD_NATS_URL"]
		for _, node := range nodes {
			if !strings.Contains(url, "nats://"+node+":4222") {
				t.Errorf("%s: TICKETD_NATS_URL=%q does not list %s", name, url, node)
			}
		}
		if r := td.Environment["TICKETD_NATS_REPLICAS"]; r != "3" {
			t.Errorf("%s: TICKETD_NATS_REPLICAS=%q, want 3", name, r)
		}
		if d := td.Environment["TICKETD_SQL_DRIVER"]; d != "postgres" {
			t.Errorf("%s: TICKETD_SQL_DRIVER=%q, want postgres", name, d)
		}
		if u := td.Environment["TICKETD_SQL_URL"]; !strings.HasPrefix(u, "postgres://") || !strings.Contains(u, "@postgres:5432/") {
			t.Errorf("%s: TICKETD_SQL_URL=%q does not point at the postgres service", name, u)
		}
		for k := range td.Environment {
			if !strings.Contains(configHelp(), k) {
				t.Errorf("%s: environment variable %s is not read by ticketd", name, k)
			}
		}
		for _, dep := range append(slices.Clone(nodes), "postgres") {
			if !slices.Contains(td.DependsOn, dep) {
				t.Errorf("%s does not depend on %s", name, dep)
			}
		}
		for _, v := range td.Volumes {
			if volumes[v] {
				t.Errorf("%s shares volume %s", name, v)
			}
			volumes[v] = true
		}
	}
	if !slices.Contains(compose.Services["kurrentdb"].Profiles, "kurrentdb") {
		t.Error("the KurrentDB service must only start with its profile")
	}
	if _, err := os.Stat("../../Dockerfile"); err != nil {
		t.Errorf("the ticketd build needs a Dockerfile: %v", err)
	}
}

// configHelp lists the flags' usage, which names every environment variable read.
func configHelp() string {
	var b strings.Builder
	fs := newFlagSet(new(config))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}
