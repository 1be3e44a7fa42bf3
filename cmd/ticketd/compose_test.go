package main

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No container engine runs here, so docker-compose.yml is checked by reading it: the
// services exist, ticketd is configured through the same environment variables that
// parseConfig reads, and the KurrentDB service is documented.
func TestDockerCompose(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   []string          `yaml:"depends_on"`
			Build       any               `yaml:"build"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	for _, name := range []string{"nats", "postgres", "ticketd"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("service %q is missing", name)
		}
	}
	td := compose.Services["ticketd"]
	if td.Build == nil {
		t.Error("ticketd must be built from this repository")
	}
	if url := td.Environment["TICKETD_NATS_URL"]; !strings.HasPrefix(url, "nats://nats:") {
		t.Errorf("ticketd must use the nats service, has TICKETD_NATS_URL=%q", url)
	}
	for k := range td.Environment {
		if !strings.Contains(configHelp(), k) {
			t.Errorf("ticketd environment variable %s is not read by ticketd", k)
		}
	}
	if !strings.Contains(string(raw), "kurrentdb") {
		t.Error("the KurrentDB service is not documented")
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
