package natsapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	natsstore "github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// Every stored event reaches the integration stream once, in store order, even when
// the forwarder restarts having lost its checkpoint (a crash before saving it).
func TestForwarderPublishesEveryEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := natsstore.Open(ctx, natsstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "t", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := h.Execute(ctx, res.TicketID, domain.SendReply{Body: "hello"}, commands.Meta{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	total, _ := store.LastPosition(ctx)

	runOnce := func() {
		f, err := natsapi.NewForwarder(ctx, store, store.Conn(), nil)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.Run(runCtx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if cp, _ := f.Checkpoint(ctx); cp >= total {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("forwarder did not reach the end of the store")
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
	}
	runOnce()
	// Lose the checkpoint, as a crash between publishing and saving would.
	js, _ := jetstream.New(store.Conn())
	kv, _ := js.KeyValue(ctx, natsapi.CheckpointBucket)
	if err := kv.Purge(ctx, "integration-forwarder"); err != nil {
		t.Fatal(err)
	}
	runOnce()

	// Read the integration stream as another service would, over its own connection.
	nc, err := nats.Connect(store.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	consumerJS, _ := jetstream.New(nc)
	cons, err := consumerJS.OrderedConsumer(ctx, natsapi.IntegrationStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"tickets.events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var lastPos uint64
	for uint64(len(seen)) < total {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(seen), total, err)
		}
		var ce natsapi.CloudEvent
		if err := json.Unmarshal(msg.Data(), &ce); err != nil {
			t.Fatal(err)
		}
		if seen[ce.ID] {
			t.Fatalf("event %s delivered twice", ce.ID)
		}
		if ce.Position <= lastPos || msg.Subject() != "tickets.events."+ce.Type || ce.SpecVersion != "1.0" {
			t.Fatalf("bad event %+v on %s after position %d", ce, msg.Subject(), lastPos)
		}
		seen[ce.ID], lastPos = true, ce.Position
	}
	info, err := consumerJS.Stream(ctx, natsapi.IntegrationStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != total {
		t.Fatalf("integration stream holds %d messages for %d events", n, total)
	}
}
