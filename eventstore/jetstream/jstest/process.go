package jstest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsServerModule is the module whose command the nodes in processes run: the version
// this module requires, so that they run the same server code as the embedded one.
const natsServerModule = "github.com/nats-io/nats-server/v2"

var (
	buildOnce sync.Once
	builtExe  string
	buildErr  error
)

// natsServerCommand builds the nats-server command once per test binary, into a folder
// of the system's temporary directory named after its version, which later test runs
// reuse (the build goes to a temporary name first: test packages run in parallel).
func natsServerCommand() (string, error) {
	buildOnce.Do(func() {
		version := "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, dep := range info.Deps {
				if dep.Path == natsServerModule {
					version = dep.Version
				}
			}
		}
		dir := filepath.Join(os.TempDir(), "jstest-nats-server-"+version)
		exe := filepath.Join(dir, "nats-server")
		if _, err := os.Stat(exe); err == nil && version != "unknown" {
			builtExe = exe
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		tmp := fmt.Sprintf("%s.%d", exe, os.Getpid())
		out, err := exec.Command(goCmd, "build", "-o", tmp, natsServerModule).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("jstest: go build %s: %w: %s", natsServerModule, err, out)
			return
		}
		if buildErr = os.Rename(tmp, exe); buildErr == nil {
			builtExe = exe
		}
	})
	return builtExe, buildErr
}

// startProcess starts node i in a nats-server process, with a configuration file in its
// directory, and waits until it takes client connections.
func (c *Cluster) startProcess(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	var routes []string
	for j, other := range c.nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", other.clusterPort))
		}
	}
	conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: %s
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, nd.name, nd.clientPort, nd.monitorPort, filepath.Join(nd.dir, "jetstream"), ClusterName, nd.clusterPort, strings.Join(routes, ", "))
	confFile := filepath.Join(nd.dir, "nats-server.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(c.exe, "-c", confFile)
	if os.Getenv("JSTEST_LOG") == "1" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("jstest: node %s: %w", nd.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nd.clientPort), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("jstest: node %s exited at start (JSTEST_LOG=1 shows its log)", nd.name)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("jstest: node %s not ready for connections after 10s", nd.name)
		}
		time.Sleep(25 * time.Millisecond)
	}
	nd.cmd, nd.exited = cmd, exited
	return nil
}

// stopProcess sends sig to node i's process, if it runs, and waits until it has exited.
func (c *Cluster) stopProcess(i int, sig syscall.Signal) {
	c.mu.Lock()
	nd := c.nodes[i]
	cmd, exited := nd.cmd, nd.exited
	nd.cmd, nd.exited = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// monitor GETs path from node nd's monitoring endpoint and decodes the JSON answer into
// v (when not nil); it returns the HTTP status.
func monitor(nd *node, path string, v any) (int, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", nd.monitorPort, path))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil {
		err = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode, err
}

// waitHealthy waits until every running node's health endpoint answers 200 (JetStream
// has a meta leader, the node is current with it, and so are its streams) and the meta
// leader sees every other running node online and current, as it must to place a
// replicated stream on them.
func (c *Cluster) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		var running []*node
		for _, nd := range c.nodes {
			if nd.cmd != nil {
				running = append(running, nd)
			}
		}
		c.mu.Unlock()
		unhealthy := ""
		for _, nd := range running {
			if status, err := monitor(nd, "/healthz", nil); err != nil || status != http.StatusOK {
				unhealthy = fmt.Sprintf("%s (%d, %v)", nd.name, status, err)
				break
			}
		}
		if unhealthy == "" && !metaComplete(running) {
			unhealthy = "meta leader (not seeing every node)"
		}
		if unhealthy == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jstest: node %s not healthy after %v", unhealthy, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metaComplete tells whether one of the running nodes leads the meta group and sees
// each of the others online and current.
func metaComplete(running []*node) bool {
	for _, nd := range running {
		var jsz server.JSInfo
		if status, err := monitor(nd, "/jsz", &jsz); err != nil || status != http.StatusOK || jsz.Meta == nil || jsz.Meta.Leader != nd.name {
			continue
		}
		seen := 0
		for _, p := range jsz.Meta.Replicas {
			if p.Current && !p.Offline {
				seen++
			}
		}
		return seen == len(running)-1
	}
	return false
}

// processStreamLeader asks the running nodes' monitoring endpoints who leads the
// stream of the global account.
func (c *Cluster) processStreamLeader(stream string) int {
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	c.mu.Unlock()
	for _, nd := range nodes {
		if nd.cmd == nil {
			continue
		}
		var jsz server.JSInfo
		if status, err := monitor(nd, "/jsz?accounts=true&streams=true", &jsz); err != nil || status != http.StatusOK {
			continue
		}
		for _, acc := range jsz.AccountDetails {
			for _, st := range acc.Streams {
				if acc.Name != server.DEFAULT_GLOBAL_ACCOUNT || st.Name != stream || st.Cluster == nil {
					continue
				}
				for i, n := range nodes {
					if n.name == st.Cluster.Leader {
						return i
					}
				}
			}
		}
	}
	return -1
}
