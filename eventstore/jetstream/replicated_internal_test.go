package jetstream

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
)

// TestReplicatedReadYourWrites appends through one connection and reads the stream at
// once through connections to every node of a 3-node cluster (R3 stream). Promise:
// ReadStream always returns the acknowledged append. The plain direct gets it is
// built on may be answered by a replica that has not applied the write yet; how often
// that happened is logged, to show what the leader check is for.
func TestReplicatedReadYourWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	c := jstest.StartCluster(t)
	ctx := t.Context()
	var stores []*Store
	for _, url := range c.URLs() {
		s, err := Open(ctx, Config{URL: url, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !s.replicated {
			t.Fatal("an R3 stream is not treated as replicated")
		}
		stores = append(stores, s)
	}
	// Several writers at once, each on its own stream, so that the replicas have
	// something to catch up on.
	const writers, rounds = 6, 40
	var (
		mu    sync.Mutex
		stale int
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("ticket-ryw-%d", w)
			rev := eventstore.NoStream
			for i := range rounds {
				ws := stores[(w+i)%len(stores)]
				res, err := ws.Append(ctx, name, rev, []eventstore.EventData{{ID: uuid.NewString(), Type: "T", Data: []byte(`{}`)}})
				if err != nil {
					t.Error(err)
					return
				}
				rev = res.Revision
				r := stores[(w+i+1)%len(stores)]
				// The direct gets alone, as on a single server.
				var last uint64
				if err := r.scan(ctx, name, 1, math.MaxInt, func(ev eventstore.RecordedEvent) { last = ev.Position }); err != nil {
					t.Error(err)
					return
				}
				if last < res.LastPosition {
					mu.Lock()
					stale++
					mu.Unlock()
				}
				evs, err := r.ReadStream(ctx, name)
				if err != nil {
					t.Error(err)
					return
				}
				if len(evs) != i+1 || evs[len(evs)-1].Position != res.LastPosition {
					t.Errorf("%s round %d: ReadStream returned %d events, the appends made %d", name, i, len(evs), i+1)
					return
				}
			}
		})
	}
	wg.Wait()
	const total = writers * rounds
	t.Logf("%d appends, each read back at once through another node: ReadStream always complete; plain direct gets were behind %d times", total, stale)
}
