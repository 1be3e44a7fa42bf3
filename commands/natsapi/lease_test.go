package natsapi_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
)

// leaseLog drops the leases' logs unless the test runs with -v.
func leaseLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// leaseTimeline records when each contender's work ran, and how many ran at once.
type leaseTimeline struct {
	mu        sync.Mutex
	active    int
	maxActive int
	starts    map[string][]time.Time
	ends      map[string][]time.Time
	holder    string
}

func (tl *leaseTimeline) lead(name string) func(context.Context) {
	return func(ctx context.Context) {
		tl.mu.Lock()
		tl.active++
		tl.maxActive = max(tl.maxActive, tl.active)
		tl.starts[name] = append(tl.starts[name], time.Now())
		tl.holder = name
		tl.mu.Unlock()
		<-ctx.Done()
		tl.mu.Lock()
		tl.active--
		tl.ends[name] = append(tl.ends[name], time.Now())
		if tl.holder == name {
			tl.holder = ""
		}
		tl.mu.Unlock()
	}
}

// current is the contender whose work runs now, "" for none.
func (tl *leaseTimeline) current() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.holder
}

// waitHolder waits until a contender other than not runs the work.
func (tl *leaseTimeline) waitHolder(t *testing.T, not string, within time.Duration) (string, time.Duration) {
	t.Helper()
	began := time.Now()
	for time.Since(began) < within {
		if h := tl.current(); h != "" && h != not {
			return h, time.Since(began)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no holder other than %q after %v", not, within)
	return "", 0
}

// TestLeaseOneHolderAtATime runs three contenders for one lease (TTL 1 s), each on
// its own connection as three processes would. Promise: the work runs in at most one
// of them at any time; a holder that stops cleanly deletes the key, so another takes
// over without waiting for it to expire; a holder cut off from NATS stops its work at its deadline, before the key
// expires, and another takes over after the expiry, within TTL plus a retry period.
func TestLeaseOneHolderAtATime(t *testing.T) {
	srv := jstest.StartServer(t, "", nil)
	const ttl = time.Second
	tl := &leaseTimeline{starts: map[string][]time.Time{}, ends: map[string][]time.Time{}}
	type contender struct {
		nc   *nats.Conn
		stop context.CancelFunc
		done chan struct{}
	}
	contenders := map[string]*contender{}
	for _, name := range []string{"a", "b", "c"} {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		l, err := natsapi.NewLease(t.Context(), natsapi.LeaseConfig{Conn: nc, Key: "test-work", Owner: name, TTL: ttl, Log: leaseLog()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		c := &contender{nc: nc, stop: stop, done: make(chan struct{})}
		contenders[name] = c
		go func() {
			defer close(c.done)
			_ = l.Run(ctx, tl.lead(name))
		}()
	}
	t.Cleanup(func() {
		for _, c := range contenders {
			c.stop()
			<-c.done
		}
	})

	first, took := tl.waitHolder(t, "", 5*time.Second)
	t.Logf("first holder %s after %v", first, took.Round(time.Millisecond))
	time.Sleep(2 * ttl) // several refreshes: nobody else may start meanwhile
	if h := tl.current(); h != first {
		t.Fatalf("holder changed from %s to %q while it kept refreshing", first, h)
	}

	// A clean stop releases the key: it is deleted, so the next holder does not wait
	// for it to expire, and starts within a retry period (200 ms; the bound leaves
	// room for a loaded machine). The watch shows the deletion whatever the timing.
	js, err := jetstream.New(contenders[first].nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), natsapi.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := kv.Watch(t.Context(), "test-work", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	contenders[first].stop()
	<-contenders[first].done
	for deleted := false; !deleted; {
		select {
		case u := <-watch.Updates():
			switch {
			case u == nil:
				t.Fatal("the watch of the lease key ended")
			case u.Operation() == jetstream.KeyValueDelete:
				deleted = true
			case !strings.Contains(string(u.Value()), `"owner":"`+first+`"`):
				t.Fatalf("the lease key was written (%s) before %s deleted it", u.Value(), first)
			} // else a last refresh of the holder's, sent before it stopped
		case <-time.After(5 * time.Second):
			t.Fatal("a clean stop did not delete the lease key")
		}
	}
	second, handover := tl.waitHolder(t, first, 3*ttl)
	t.Logf("clean stop of %s: %s took over after %v", first, second, handover.Round(time.Millisecond))

	// Cut the holder off NATS: it cannot refresh, stops at its deadline, and another
	// takes over once the key has expired on the server.
	cut := time.Now()
	contenders[second].nc.Close()
	third, takeover := tl.waitHolder(t, second, 3*ttl)
	tl.mu.Lock()
	secondEnded := tl.ends[second][len(tl.ends[second])-1]
	thirdStarted := tl.starts[third][len(tl.starts[third])-1]
	maxActive := tl.maxActive
	tl.mu.Unlock()
	t.Logf("%s cut off: its work stopped after %v, %s took over after %v",
		second, secondEnded.Sub(cut).Round(time.Millisecond), third, takeover.Round(time.Millisecond))
	if !secondEnded.Before(thirdStarted) {
		t.Errorf("the cut-off holder stopped at %v, after the next one started (%v)", secondEnded, thirdStarted)
	}
	if secondEnded.Sub(cut) > ttl {
		t.Errorf("the cut-off holder ran %v after losing NATS, more than the TTL %v", secondEnded.Sub(cut), ttl)
	}
	if maxActive != 1 {
		t.Errorf("the work ran in %d contenders at once", maxActive)
	}
}

// TestLeaseSurvivesNodeLoss holds a lease on a replicated bucket of a 3-node cluster
// while the node the holder is connected to shuts down. Promise: the holder
// reconnects to another node and keeps the lease (no second holder), because the
// bucket is R3 and the reconnect takes less than the margin before the deadline.
func TestLeaseSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	c := jstest.StartCluster(t)
	const ttl = 2 * time.Second
	tl := &leaseTimeline{starts: map[string][]time.Time{}, ends: map[string][]time.Time{}}
	var leases []*natsapi.Lease
	for i, name := range []string{"a", "b"} {
		// a's first server is n1, b's n2; both know all three.
		urls := c.URLs()
		nc, err := nats.Connect(urls[i]+","+c.URL(), nats.DontRandomize(), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		l, err := natsapi.NewLease(t.Context(), natsapi.LeaseConfig{Conn: nc, Key: "test-work", Owner: name, TTL: ttl, Replicas: 3, Log: leaseLog()})
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan struct{})
		t.Cleanup(func() { stop(); <-done })
		go func() {
			defer close(done)
			_ = l.Run(ctx, tl.lead(name))
		}()
	}
	holder, _ := tl.waitHolder(t, "", 10*time.Second)
	node := 0
	if holder == "b" {
		node = 1
	}
	c.Shutdown(node)
	time.Sleep(2 * ttl)
	if h := tl.current(); h != holder {
		t.Errorf("holder changed from %s to %q when its node shut down", holder, h)
	}
	c.Restart(node)
	var terms atomic.Int64
	for _, l := range leases {
		terms.Add(l.Terms())
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.maxActive != 1 || terms.Load() != 1 {
		t.Errorf("%d holders at once, %d terms in all; want 1 and 1", tl.maxActive, terms.Load())
	}
}
