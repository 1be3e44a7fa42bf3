package natsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Leases: work that must run in one process of a deployment at a time (the integration
// event forwarder, the writer of a shared SQL read model) runs only while its process
// holds the lease of that work, a key of the KV bucket LeaseBucket.
//
//   - The bucket keeps a value for its MaxAge, the lease TTL: a key nobody writes again
//     disappears TTL after its last write.
//   - A candidate takes the lease with Create, which succeeds only when the key does not
//     exist (expired, released, or never taken). The KV revision it gets is the term.
//   - The holder writes the key again every TTL/3 with Update(revision), which succeeds
//     only if nobody else wrote it since. A refused Update means the lease is lost: the
//     work is stopped at once. An Update that gets no answer (NATS unreachable) keeps
//     the lease until its deadline: TTL - TTL/5 after the start of the last successful
//     write, then the work is stopped.
//   - The deadline comes before the server lets the key expire (TTL after the server
//     stored the write, which is after the holder sent it), so a holder that keeps
//     running its clock stops before anybody else can start: at most one holder at a
//     time. The exception is a holder that is paused (a long GC or SIGSTOP, a VM
//     migration) after it checked its deadline and before it acts: it may act once
//     more after another process took over, across the lease expiry boundary. Work run
//     under a lease must therefore be safe against that: the forwarder publishes with
//     the event ID as Nats-Msg-Id, so a second copy is dropped by the destination
//     stream; the SQL read model moves its checkpoint with a compare-and-set in the
//     transaction of its rows, so a stale writer's commit is refused.
//   - Stopping cleanly (the context of Run ends) deletes the key, so that another
//     process takes over at its next try instead of waiting for the TTL.

// Lease defaults.
const (
	LeaseBucket     = "ticketcore_leases"
	DefaultLeaseTTL = 10 * time.Second
	// minLeaseTTL keeps the refresh and retry periods meaningful.
	minLeaseTTL = 500 * time.Millisecond
)

// LeaseConfig describes one lease.
type LeaseConfig struct {
	// Conn is the NATS connection (ticketd: the store's).
	Conn *nats.Conn
	// Key names the work the lease is for (integration-forwarder, sql-readmodel-...):
	// letters, digits, '-', '_', '=', '.' and '/'.
	Key string
	// Owner names this process in the key's value and the logs; default
	// <hostname>/<pid>. A random suffix makes each Lease distinct.
	Owner string
	// TTL is the lease duration, the bucket's MaxAge (default DefaultLeaseTTL). Every
	// process of a deployment must use the same: the last one to start sets the bucket's.
	TTL time.Duration
	// Replicas of the bucket on a JetStream cluster (default 1).
	Replicas int
	Log      *slog.Logger
}

// Lease is one process's claim on a key of LeaseBucket.
type Lease struct {
	cfg   LeaseConfig
	kv    jetstream.KeyValue
	log   *slog.Logger
	value []byte
	held  atomic.Bool
	terms atomic.Int64
}

// leaseValue is the value of a held key.
type leaseValue struct {
	Owner    string    `json:"owner"`
	Acquired time.Time `json:"acquired"`
	TTL      string    `json:"ttl"`
}

// NewLease creates (or updates) the lease bucket and returns a lease on cfg.Key that
// is not held yet: Run campaigns for it.
func NewLease(ctx context.Context, cfg LeaseConfig) (*Lease, error) {
	if cfg.Conn == nil || cfg.Key == "" {
		return nil, errors.New("lease: Conn and Key are required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultLeaseTTL
	}
	if cfg.TTL < minLeaseTTL {
		return nil, fmt.Errorf("lease: TTL %v is below %v", cfg.TTL, minLeaseTTL)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	cfg.Owner += "/" + hex.EncodeToString(nonce[:])
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "leases of the work one ticketd of a deployment does at a time",
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket: %w", err)
	}
	return &Lease{cfg: cfg, kv: kv, log: cfg.Log.With("lease", cfg.Key, "owner", cfg.Owner)}, nil
}

// Owner is this lease's owner name, as written in the key.
func (l *Lease) Owner() string { return l.cfg.Owner }

// Held reports whether this process holds the lease now.
func (l *Lease) Held() bool { return l.held.Load() }

// Terms is how many times this process has gained the lease.
func (l *Lease) Terms() int64 { return l.terms.Load() }

// Holder reads the key: the owner holding the lease and the term (KV revision), or
// "" when nobody holds it.
func (l *Lease) Holder(ctx context.Context) (string, uint64, error) {
	entry, err := l.kv.Get(ctx, l.cfg.Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	var v leaseValue
	if err := json.Unmarshal(entry.Value(), &v); err != nil {
		return "", 0, fmt.Errorf("lease %s: %w", l.cfg.Key, err)
	}
	return v.Owner, entry.Revision(), nil
}

// Periods derived from the TTL.
func (l *Lease) refreshEvery() time.Duration { return l.cfg.TTL / 3 }
func (l *Lease) margin() time.Duration       { return l.cfg.TTL / 5 }
func (l *Lease) retryEvery() time.Duration {
	return min(max(l.cfg.TTL/5, 100*time.Millisecond), 2*time.Second)
}

// requestTimeout bounds the KV requests of a candidate (a holder's refresh is bounded
// by its deadline instead).
func (l *Lease) requestTimeout() time.Duration { return l.refreshEvery() }

// Run campaigns for the lease until ctx ends. Each time it gains the lease it calls
// lead with a context that ends when the lease is lost (or ctx ends), and waits for
// lead to return before it campaigns again; so lead never runs twice at once in this
// process. When ctx ends it releases the lease (deletes the key) and returns nil. If
// lead returns on its own, the lease is released and sought again after a pause.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context)) error {
	for {
		rev, since, err := l.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		term := rev
		l.terms.Add(1)
		l.held.Store(true)
		l.log.Info("lease acquired; starting the work", "term", term)
		leadCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			lead(leadCtx)
		}()
		rev, reason := l.hold(ctx, rev, since, done)
		stop()
		<-done
		l.held.Store(false)
		if rev != 0 {
			l.release(rev)
		}
		if ctx.Err() != nil {
			l.log.Info("lease released", "term", term)
			return nil
		}
		l.log.Warn("lease lost; the work is stopped", "term", term, "reason", reason)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.retryEvery()):
		}
	}
}

// acquire tries Create until it succeeds (the revision and the instant the request was
// sent) or ctx ends.
func (l *Lease) acquire(ctx context.Context) (uint64, time.Time, error) {
	logged := false
	for {
		sent := time.Now()
		value, _ := json.Marshal(leaseValue{Owner: l.cfg.Owner, Acquired: sent.UTC(), TTL: l.cfg.TTL.String()})
		reqCtx, cancel := context.WithTimeout(ctx, l.requestTimeout())
		rev, err := l.kv.Create(reqCtx, l.cfg.Key, value)
		cancel()
		if err == nil {
			l.value = value
			return rev, sent, nil
		}
		if ctx.Err() != nil {
			return 0, time.Time{}, ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !logged {
			l.log.Warn("lease: cannot reach the lease bucket; trying again", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		case <-time.After(l.retryEvery()):
		}
	}
}

// hold refreshes the lease until it is lost, its deadline passes without a successful
// refresh, lead returns, or ctx ends. It returns the last revision written (0 when the
// lease was taken by someone else: nothing to release) and why it stopped.
func (l *Lease) hold(ctx context.Context, rev uint64, since time.Time, done <-chan struct{}) (uint64, string) {
	deadline := since.Add(l.cfg.TTL - l.margin())
	ticker := time.NewTicker(l.refreshEvery())
	defer ticker.Stop()
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return rev, "no successful refresh before the deadline (NATS unreachable?)"
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return rev, "stopping"
		case <-done:
			timer.Stop()
			return rev, "the work returned"
		case <-timer.C:
			return rev, "no successful refresh before the deadline (NATS unreachable?)"
		case <-ticker.C:
			timer.Stop()
		}
		sent := time.Now()
		// An answer after the deadline would come too late anyway.
		reqCtx, cancel := context.WithDeadline(ctx, deadline)
		next, err := l.kv.Update(reqCtx, l.cfg.Key, l.value, rev)
		cancel()
		switch {
		case err == nil:
			rev, deadline = next, sent.Add(l.cfg.TTL-l.margin())
		case ctx.Err() != nil:
			return rev, "stopping"
		case isWrongSequence(err):
			// Somebody else wrote the key: the lease expired and was taken, or our
			// previous Update was stored but its answer lost. Only the second keeps it.
			getCtx, cancel := context.WithDeadline(ctx, deadline)
			owner, cur, gerr := l.Holder(getCtx)
			cancel()
			if gerr == nil && owner == l.cfg.Owner && cur > rev {
				rev = cur // the deadline stays that of the last answered write
				continue
			}
			return 0, fmt.Sprintf("another process holds it: %v", err)
		default:
			l.log.Warn("lease: refresh failed; holding on until the deadline", "err", err, "deadline_in", time.Until(deadline).Round(time.Millisecond))
		}
	}
}

// release deletes the key if it is still at rev, so another process can take over at
// once.
func (l *Lease) release(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), l.requestTimeout())
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil && !isWrongSequence(err) {
		l.log.Warn("lease: release failed; the key expires on its own", "err", err)
	}
}

// isWrongSequence reports a refused compare-and-set: code 10071, or 10164 on a
// replicated bucket.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == 10071 || apiErr.ErrorCode == 10164)
}
