package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
)

// BenchmarkCommandPath splits one warm command's cost into layers, on one store, one
// call at a time: the raw JetStream client publish of a stored event (the bench's
// baseline), the adapter's Append of the same bytes, and a whole command (decide,
// encode, hash, append). Run the layers alternately and compare within a round:
//
//	go test ./bench -run '^$' -bench CommandPath -benchtime 20000x -count 5
func BenchmarkCommandPath(b *testing.B) {
	ctx := context.Background()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range 1000 {
		r, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{Subject: "s", RaisedBy: "a@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.TicketID)
	}
	comment := domain.AddComment{Body: "printer invoice login password error export report delay order refund shipping account access"}
	sample, err := h.Execute(ctx, ids[0], comment, commands.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := sample.Events[0].Encode()
	if err != nil {
		b.Fatal(err)
	}

	round := 0 // -count runs each layer again: new subjects and message IDs each time
	b.Run("raw-publish", func(b *testing.B) {
		round++
		prefix := "tkt.ev.raw-" + strconv.Itoa(round) + "-"
		js, err := natsjs.New(store.Conn())
		if err != nil {
			b.Fatal(err)
		}
		last := map[string]uint64{}
		i := 0
		for b.Loop() {
			subject := prefix + strconv.Itoa(i%len(ids))
			msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
			msg.Header.Set(natsjs.MsgIDHeader, subject+"-"+strconv.Itoa(i))
			msg.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[subject], 10))
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				b.Fatal(err)
			}
			last[subject] = ack.Sequence
			i++
		}
	})
	b.Run("adapter-append", func(b *testing.B) {
		round++
		prefix := "append-" + strconv.Itoa(round) + "-"
		revs := map[string]eventstore.Revision{}
		i := 0
		for b.Loop() {
			stream := prefix + strconv.Itoa(i%len(ids))
			rev, ok := revs[stream]
			if !ok {
				rev = eventstore.NoStream
			}
			res, err := store.Append(ctx, stream, rev, []eventstore.EventData{{ID: commands.DeriveID(prefix, strconv.Itoa(i)), Type: "ticket.comment_added", Data: data}})
			if err != nil {
				b.Fatal(err)
			}
			revs[stream] = res.Revision
			i++
		}
	})
	b.Run("command", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := h.Execute(ctx, ids[i%len(ids)], comment, commands.Meta{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkHandlerWorkload is the handler's own share of a command (load from its
// cache, decide, encode, hash, evolve) on the bench's workload, 1 client, against the
// memory store, whose append costs next to nothing: what a command adds to the bare
// append the bench's baseline measures.
//
//	go test ./bench -run '^$' -bench HandlerWorkload -benchmem
func BenchmarkHandlerWorkload(b *testing.B) {
	ctx := context.Background()
	w := Generate(20000, 1)
	for b.Loop() {
		b.StopTimer()
		store := memstore.New()
		clock := newWorkloadClock()
		h, err := newBenchHandler(ctx, store, clock)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := runCommands(ctx, h, clock, w, 0, make([]string, w.Tickets), 1, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.Steps)), "ns/command")
}
