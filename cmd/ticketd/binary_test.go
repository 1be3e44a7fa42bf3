package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The tests that run ticketd as a process share one build of it.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func builtTicketd() (string, error) {
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		buildDir, buildErr = os.MkdirTemp("", "ticketd-test-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "ticketd")
		if out, err := exec.Command(goTool, "build", "-o", buildBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return buildBin, buildErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
