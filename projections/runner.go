package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// catchUpBatch is how many events one ReadAll call fetches during catch-up and rebuild:
// large enough to amortise round trips, small enough to bound memory.
const catchUpBatch = 4096

// Runner feeds projections from the store: catch-up from their checkpoint in large
// batches, then live through a subscription. Every event is decoded once for all.
type Runner struct {
	store       eventstore.Store
	projections []Projection
	log         *slog.Logger

	mu      sync.Mutex
	pos     uint64
	advance chan struct{} // closed and replaced whenever pos moves
}

// NewRunner returns a runner for the given projections.
func NewRunner(store eventstore.Store, log *slog.Logger, projections ...Projection) *Runner {
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{store: store, projections: projections, log: log, advance: make(chan struct{})}
	r.pos = r.checkpoint()
	return r
}

// checkpoint is the lowest position all projections have applied.
func (r *Runner) checkpoint() uint64 {
	var low uint64
	for i, p := range r.projections {
		if pos := p.Position(); i == 0 || pos < low {
			low = pos
		}
	}
	return low
}

// Position is the global position every projection has reached.
func (r *Runner) Position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

func (r *Runner) apply(rec eventstore.RecordedEvent) error {
	e, err := domain.DecodeEvent(rec.Data)
	if err != nil {
		return fmt.Errorf("projection input at position %d: %w", rec.Position, err)
	}
	for _, p := range r.projections {
		if err := p.Apply(e, rec.Position); err != nil {
			return fmt.Errorf("projection %s at position %d: %w", p.Name(), rec.Position, err)
		}
	}
	r.mu.Lock()
	r.pos = rec.Position
	close(r.advance)
	r.advance = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// CatchUp applies every stored event past the checkpoint, in batches, and returns
// the position reached.
func (r *Runner) CatchUp(ctx context.Context) (uint64, error) {
	from := r.checkpoint() + 1
	for {
		recs, err := r.store.ReadAll(ctx, from, catchUpBatch)
		if err != nil {
			return 0, fmt.Errorf("catch up from %d: %w", from, err)
		}
		if len(recs) == 0 {
			return from - 1, nil
		}
		for _, rec := range recs {
			if err := r.apply(rec); err != nil {
				return 0, err
			}
		}
		from = recs[len(recs)-1].Position + 1
	}
}

// Run catches up, then follows new events until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	pos, err := r.CatchUp(ctx)
	if err != nil {
		return err
	}
	r.log.Info("projections caught up", "position", pos)
	return r.store.Subscribe(ctx, pos+1, r.apply)
}

// Rebuild empties every projection and replays the whole store into them.
func (r *Runner) Rebuild(ctx context.Context) (uint64, error) {
	for _, p := range r.projections {
		p.Reset()
	}
	r.mu.Lock()
	r.pos = 0
	r.mu.Unlock()
	return r.CatchUp(ctx)
}

// WaitFor blocks until the projections have applied position pos (read-your-writes).
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.mu.Lock()
		reached, advance := r.pos >= pos, r.advance
		r.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Replay reads every stored event up to the store's current end, in batches, and calls
// fn for each; it holds one batch in memory at a time. It writes nothing.
func Replay(ctx context.Context, store eventstore.Store, fn func(e domain.Event, pos uint64) error) (uint64, error) {
	end, err := store.LastPosition(ctx)
	if err != nil {
		return 0, err
	}
	from := uint64(1)
	for from <= end {
		recs, err := store.ReadAll(ctx, from, catchUpBatch)
		if err != nil {
			return 0, fmt.Errorf("replay from %d: %w", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Position > end {
				return end, nil
			}
			e, err := domain.DecodeEvent(rec.Data)
			if err != nil {
				return 0, fmt.Errorf("replay at position %d: %w", rec.Position, err)
			}
			if err := fn(e, rec.Position); err != nil {
				return 0, err
			}
		}
		from = recs[len(recs)-1].Position + 1
	}
	return end, nil
}
