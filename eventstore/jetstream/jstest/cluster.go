// Package jstest starts NATS JetStream servers for tests: a standalone server, or a
// cluster of several nodes with routes between them, each with its own storage
// directory, all on 127.0.0.1. The nodes run inside the test process, or each in a
// nats-server process of its own (built from the module this one requires), so that a
// node can be killed as a crash or the kernel's out-of-memory killer kills one. Nodes
// can be stopped and restarted on the same directory and ports, to test what survives
// the loss of a node.
package jstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterName is the name of the clusters StartCluster starts.
const ClusterName = "ticketcore-test"

// readyTimeout bounds the wait for a cluster's JetStream meta leader, and for a
// restarted node to be current again.
const readyTimeout = 30 * time.Second

// Cluster is a JetStream cluster running in the test process.
type Cluster struct {
	t         testing.TB
	configure func(*server.Options)
	exe       string // the nats-server command the nodes run in (Options.Processes)
	mu        sync.Mutex
	nodes     []*node
}

// node is one server of the cluster; its ports and directory outlive restarts.
type node struct {
	name        string
	dir         string
	clientPort  int
	clusterPort int
	srv         *server.Server // in the test process; nil while shut down

	// A node in a process of its own (Options.Processes).
	monitorPort int
	cmd         *exec.Cmd // nil while shut down
	exited      chan struct{}
}

func (nd *node) running() bool { return nd.srv != nil || nd.cmd != nil }

// Options adjust the servers of a cluster.
type Options struct {
	// Nodes is the number of servers (default 3).
	Nodes int
	// Configure, when set, adjusts each server's options before it starts (limits,
	// authentication). It is called again at every restart. Not with Processes.
	Configure func(*server.Options)
	// Processes runs each node in a nats-server process of its own, which Kill can
	// kill (SIGKILL). The first cluster a test binary starts that way builds the
	// nats-server command (a few seconds).
	Processes bool
}

// StartCluster starts a JetStream cluster of 3 nodes (n1, n2, n3) on 127.0.0.1, each
// with its own storage directory under t.TempDir() and routes to all the others, and
// waits until JetStream has a meta leader and every node is current. The cluster is
// shut down when the test ends.
func StartCluster(t testing.TB) *Cluster { return StartClusterWith(t, Options{}) }

// StartClusterWith is StartCluster with options.
func StartClusterWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	if opts.Processes && opts.Configure != nil {
		t.Fatal("jstest: Options.Configure does not reach nodes in processes of their own")
	}
	c := &Cluster{t: t, configure: opts.Configure}
	if opts.Processes {
		exe, err := natsServerCommand()
		if err != nil {
			t.Fatal(err)
		}
		c.exe = exe
	}
	// freePort's ports can be taken by another process before a node binds them (the
	// test packages run in parallel), so a start that fails is tried again on new ports.
	var err error
	for range startAttempts {
		if err = c.startAll(t, n); err == nil {
			break
		}
		c.shutdownAll()
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the nodes' folders, so that it runs before their removal.
	t.Cleanup(c.shutdownAll)
	if err := c.WaitReady(readyTimeout); err != nil {
		t.Fatal(err)
	}
	return c
}

// startAttempts is how many times StartClusterWith tries to start the nodes.
const startAttempts = 3

// startAll starts n nodes on fresh ports and folders. All nodes start together: each
// one's routes name every other node, so the meta group knows its full size from the
// start.
func (c *Cluster) startAll(t testing.TB, n int) error {
	c.mu.Lock()
	c.nodes = nil
	for i := range n {
		c.nodes = append(c.nodes, &node{
			name:        fmt.Sprintf("n%d", i+1),
			dir:         t.TempDir(),
			clientPort:  freePort(t),
			clusterPort: freePort(t),
			monitorPort: freePort(t),
		})
	}
	c.mu.Unlock()
	for i := range c.nodes {
		if err := c.start(i, c.configure); err != nil {
			return err
		}
	}
	return nil
}

// freePort reserves a port on 127.0.0.1 by listening on it and closing the listener.
// Another process could take it before the server does; on a test machine that is
// rare enough.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) start(i int, configure func(*server.Options)) error {
	if c.exe != "" {
		return c.startProcess(i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	var routes []*url.URL
	for j, other := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", other.clusterPort)})
		}
	}
	opts := &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.clientPort,
		JetStream:  true,
		StoreDir:   nd.dir,
		NoLog:      true,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name: ClusterName,
			Host: "127.0.0.1",
			Port: nd.clusterPort,
		},
		Routes: routes,
	}
	if configure != nil {
		configure(opts)
	}
	if os.Getenv("JSTEST_LOG") == "1" {
		opts.NoLog = false
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("jstest: node %s: %w", nd.name, err)
	}
	if !opts.NoLog {
		srv.ConfigureLogger() // to stderr: JSTEST_LOG=1 shows what the nodes do
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("jstest: node %s not ready for connections after 10s", nd.name)
	}
	nd.srv = srv
	return nil
}

// WaitReady waits until one running node is the JetStream meta leader and every
// running node is current (has caught up with the meta group). Nodes in processes are
// ready when their health endpoint is, which also asks that their streams be current.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	if c.exe != "" {
		return c.waitHealthy(timeout)
	}
	deadline := time.Now().Add(timeout)
	for {
		leader, peers, current, running := "", 0, 0, 0
		c.mu.Lock()
		for _, nd := range c.nodes {
			if nd.srv == nil {
				continue
			}
			running++
			if nd.srv.JetStreamIsLeader() {
				// Only the leader knows the peers it has heard from.
				leader, peers = nd.name, len(nd.srv.JetStreamClusterPeers())
			}
			if nd.srv.JetStreamIsCurrent() {
				current++
			}
		}
		c.mu.Unlock()
		if leader != "" && peers == running && current == running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jstest: JetStream not ready after %v: meta leader %q sees %d peers, %d of %d running nodes current", timeout, leader, peers, current, running)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// URL is the client URL of every node, comma separated, as nats.Connect takes it.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// URLs are the client URLs of the nodes, in order, whether they run or not.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", nd.clientPort)
	}
	return urls
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Name is node i's server name (n1, n2, ...).
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Server is node i's server, nil while it is shut down or when it runs in a process.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Shutdown stops node i (server.Shutdown, or SIGTERM for a process: it hands off the
// leaderships it holds first) and waits until it has stopped. Its directory and ports
// are kept.
func (c *Cluster) Shutdown(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	c.stopProcess(i, syscall.SIGTERM)
}

// Kill kills node i's process (SIGKILL): it stops at once, with whatever its files
// hold. Its directory and ports are kept. Only with Options.Processes.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if c.exe == "" {
		c.t.Fatal("jstest: Kill needs a cluster started with Options.Processes")
	}
	c.stopProcess(i, syscall.SIGKILL)
}

// Restart starts node i again on its directory and ports and waits until the cluster
// is ready.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	running := c.nodes[i].running()
	c.mu.Unlock()
	if running {
		c.t.Fatalf("jstest: node %s is running", c.nodes[i].name)
	}
	if err := c.start(i, c.configure); err != nil {
		c.t.Fatal(err)
	}
	if err := c.WaitReady(readyTimeout); err != nil {
		c.t.Fatal(err)
	}
}

// StreamLeader is the index of the node leading the stream of the global account
// ($G), or -1 when no running node does.
func (c *Cluster) StreamLeader(stream string) int {
	if c.exe != "" {
		return c.processStreamLeader(stream)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, nd := range c.nodes {
		if nd.srv != nil && nd.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamCurrent waits until every running node holds a current replica of the
// stream (after a restart, once the node has caught up).
func (c *Cluster) WaitStreamCurrent(stream string, timeout time.Duration) error {
	if c.exe != "" {
		return c.waitHealthy(timeout) // a healthy node's streams are current
	}
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		c.mu.Lock()
		for _, nd := range c.nodes {
			if nd.srv != nil && !nd.srv.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				ok = false
			}
		}
		c.mu.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jstest: stream %s not current on every node after %v", stream, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) shutdownAll() {
	for i := range c.nodes {
		c.Shutdown(i)
	}
}

// StartServer starts a standalone JetStream server on 127.0.0.1 (random port), storing
// in dir (t.TempDir() when empty), and shuts it down when the test ends.
func StartServer(t testing.TB, dir string, configure func(*server.Options)) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	}
	if configure != nil {
		configure(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("jstest: server not ready for connections after 10s")
	}
	return srv
}
