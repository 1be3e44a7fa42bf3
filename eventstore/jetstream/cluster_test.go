package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
	"github.com/ticketcore/ticketcore/eventstore/storetest"
)

// TestClusterConformance runs the conformance suite on a 3-node JetStream cluster
// (jstest.StartCluster), each store on its own stream replicated on the three nodes
// (Replicas: 3), reached through the URLs of all three.
func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	began := time.Now()
	c := jstest.StartCluster(t)
	t.Logf("3-node cluster ready in %v", time.Since(began).Round(time.Millisecond))
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		i := n.Add(1)
		return open(t, jetstream.Config{
			URL:           c.URL(),
			StreamName:    fmt.Sprintf("R3_EVENTS_%d", i),
			SubjectPrefix: fmt.Sprintf("r3ev%d", i),
			Replicas:      3,
			Options:       []nats.Option{nats.Name("storetest-r3")},
		})
	})
	t.Logf("conformance on R3 streams: %v in all", time.Since(began).Round(time.Millisecond))
}

// TestClusterConcurrentConflicts has writers race on the same streams of an R3 stream,
// where the stream leader answers a wrong expected sequence with either code 10071 or,
// while earlier proposals for the subject are in flight, 10164: both must come out as
// ErrConflict, with exactly one winner per revision.
func TestClusterConcurrentConflicts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	c := jstest.StartCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Two connections (two processes), each with its own writers.
	stores := []*jetstream.Store{
		open(t, jetstream.Config{URL: c.URLs()[0], Replicas: 3}),
		open(t, jetstream.Config{URL: c.URLs()[2], Replicas: 3}),
	}
	const streams, writers, rounds = 4, 8, 15
	var (
		wins, conflicts, other atomic.Int64
		wg                     sync.WaitGroup
		codesMu                sync.Mutex
		codes                  = map[natsjs.ErrorCode]int{}
	)
	for s := range streams {
		name := fmt.Sprintf("race-%d", s)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				store := stores[w%len(stores)]
				for range rounds {
					evs, err := store.ReadStream(ctx, name)
					if err != nil {
						other.Add(1)
						t.Errorf("ReadStream: %v", err)
						return
					}
					expected := eventstore.NoStream
					if len(evs) > 0 {
						expected = evs[len(evs)-1].Revision
					}
					_, err = store.Append(ctx, name, expected, newEvents(1))
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, eventstore.ErrConflict):
						conflicts.Add(1)
						var apiErr *natsjs.APIError
						if errors.As(err, &apiErr) {
							codesMu.Lock()
							codes[apiErr.ErrorCode]++
							codesMu.Unlock()
						}
					default:
						other.Add(1)
						t.Errorf("Append: %v (want nil or ErrConflict)", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	total := 0
	for s := range streams {
		evs, err := stores[0].ReadStream(ctx, fmt.Sprintf("race-%d", s))
		if err != nil {
			t.Fatal(err)
		}
		total += len(evs)
		for i := 1; i < len(evs); i++ {
			if evs[i].Position <= evs[i-1].Position {
				t.Errorf("stream race-%d out of order at %d", s, i)
			}
		}
	}
	if int64(total) != wins.Load() {
		t.Errorf("%d events stored, %d appends acknowledged", total, wins.Load())
	}
	if conflicts.Load() == 0 {
		t.Error("no conflict at all: the race did not happen")
	}
	for code := range codes {
		if code != 10071 && code != 10164 {
			t.Errorf("a conflict carried error code %d, want 10071 or 10164", code)
		}
	}
	// Which of the two codes the leader answers depends on timing; the mapping of
	// each is also checked without a cluster (TestConflictCodes).
	t.Logf("%d appends acknowledged, %d conflicts (by code: %v), %d other errors", wins.Load(), conflicts.Load(), codes, other.Load())
}

// TestClusterReplicasKept checks that opening the store without a replica count (a
// tool such as ticketctl) keeps the count of the existing stream, while an explicit
// count is applied.
func TestClusterReplicasKept(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	c := jstest.StartCluster(t)
	replicas := func(s *jetstream.Store) int {
		info, err := s.JetStream().Stream(t.Context(), jetstream.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().Config.Replicas
	}
	r3 := open(t, jetstream.Config{URL: c.URL(), Replicas: 3})
	if n := replicas(r3); n != 3 {
		t.Fatalf("Replicas: 3 made a stream of %d", n)
	}
	tool := open(t, jetstream.Config{URL: c.URL()})
	if n := replicas(tool); n != 3 {
		t.Errorf("opening without Replicas changed the stream to %d replicas", n)
	}
	if _, err := tool.Append(t.Context(), "kept", eventstore.NoStream, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	if evs, err := tool.ReadStream(t.Context(), "kept"); err != nil || len(evs) != 1 {
		t.Errorf("ReadStream after the append: %d events, %v", len(evs), err)
	}
	down := open(t, jetstream.Config{URL: c.URL(), Replicas: 1})
	if n := replicas(down); n != 1 {
		t.Errorf("Replicas: 1 left the stream at %d", n)
	}
}
