// Package natsapi is the NATS transport: integration events published for other
// services, and (with the command bus) commands received from them.
package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Integration event defaults.
const (
	IntegrationStream  = "TICKETS_INTEGRATION"
	IntegrationSubject = "tickets.events" // events go to tickets.events.<event type>
	CheckpointBucket   = "ticketcore_checkpoints"
	forwarderKey       = "integration-forwarder"
	// dedupWindow must exceed the time between two checkpoint saves plus a restart,
	// so that events re-published after a crash are recognised as duplicates.
	dedupWindow = 30 * time.Minute
)

// CloudEvent is the stable JSON envelope of an integration event (CloudEvents 1.0,
// structured mode) with the ticketing extensions.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	Data            json.RawMessage `json:"data"`
	Sequence        uint64          `json:"sequence"` // version of the stream after the event
	Position        uint64          `json:"position"` // global position in the store
	Actor           string          `json:"actor"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
}

// NewCloudEvent wraps a stored event.
func NewCloudEvent(e domain.Event, pos uint64) CloudEvent {
	return CloudEvent{
		SpecVersion: "1.0", ID: e.ID, Source: "ticketcore", Type: e.Type, Subject: e.Stream,
		Time: e.OccurredAt, DataContentType: "application/json",
		DataSchema: fmt.Sprintf("docs/schemas/%s.v%d.json", e.Type, e.SchemaVersion), Data: e.Data,
		Sequence: e.Sequence, Position: pos, Actor: e.Actor, CorrelationID: e.CorrelationID, CausationID: e.CausationID,
	}
}

// Forwarder publishes every stored event, in store order (so in per-ticket order), to
// a JetStream stream other services consume. It is an outbox relay: its checkpoint is
// in a KV bucket, it resumes from it after a restart, and the destination stream
// drops re-published events by message ID; delivery is at least once, and exactly
// once within the duplicate window.
type Forwarder struct {
	store eventstore.Store
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	log   *slog.Logger
}

// NewForwarder creates the destination stream and checkpoint bucket if needed.
func NewForwarder(ctx context.Context, store eventstore.Store, nc *nats.Conn, log *slog.Logger, opts ...StreamOption) (*Forwarder, error) {
	st := applyStreamOptions(opts)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: IntegrationStream, Subjects: []string{IntegrationSubject + ".>"}, Storage: jetstream.FileStorage,
		Duplicates: dedupWindow, MaxAge: 7 * 24 * time.Hour, AllowDirect: true, Replicas: st.replicas,
	}); err != nil {
		return nil, fmt.Errorf("integration stream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: CheckpointBucket, Storage: jetstream.FileStorage, Replicas: st.replicas})
	if err != nil {
		return nil, fmt.Errorf("checkpoint bucket: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Forwarder{store: store, js: js, kv: kv, log: log}, nil
}

// Checkpoint is the last forwarded position.
func (f *Forwarder) Checkpoint(ctx context.Context) (uint64, error) {
	entry, err := f.kv.Get(ctx, forwarderKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(entry.Value()), 10, 64)
}

// checkpointInterval is how often the forwarder saves its position while it moves.
const checkpointInterval = 250 * time.Millisecond

// Run forwards from the checkpoint, catch-up then live, until ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	from, err := f.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("read forwarder checkpoint: %w", err)
	}
	var last atomic.Uint64
	last.Store(from)
	saved := from
	save := func(ctx context.Context) {
		if pos := last.Load(); pos != saved {
			if _, err := f.kv.Put(ctx, forwarderKey, []byte(strconv.FormatUint(pos, 10))); err != nil {
				f.log.Warn("save forwarder checkpoint", "err", err)
				return
			}
			saved = pos
		}
	}
	saverCtx, stopSaver := context.WithCancel(ctx)
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		ticker := time.NewTicker(checkpointInterval)
		defer ticker.Stop()
		for {
			select {
			case <-saverCtx.Done():
				return
			case <-ticker.C:
				save(saverCtx)
			}
		}
	}()
	err = f.store.Subscribe(ctx, from+1, func(rec eventstore.RecordedEvent) error {
		if err := f.publish(ctx, rec); err != nil {
			return err
		}
		last.Store(rec.Position)
		return nil
	})
	stopSaver()
	<-saverDone
	// Save what was forwarded, even though ctx has ended.
	saveCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	save(saveCtx)
	return err
}

func (f *Forwarder) publish(ctx context.Context, rec eventstore.RecordedEvent) error {
	if rec.Stream == domain.APITokensStream {
		return nil // credentials stay inside: not even their hashes are broadcast
	}
	e, err := domain.DecodeEventNoCopy(rec.Data)
	if err != nil {
		return err
	}
	body, err := json.Marshal(NewCloudEvent(e, rec.Position))
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: IntegrationSubject + "." + e.Type, Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("forward event %s at %d: %w", e.ID, rec.Position, err)
	}
	return nil
}
