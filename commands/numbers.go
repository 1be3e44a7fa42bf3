package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Numbers hands out human-friendly ticket numbers (TKT-2026-000042). Each process
// reserves a block per year by appending to that year's number stream with optimistic
// concurrency, so two processes never get the same block; numbers of a block that a
// process did not use before stopping are skipped (numbers are gap-tolerant).
type Numbers struct {
	store     eventstore.Store
	blockSize uint64
	owner     string
	now       func() time.Time

	mu    sync.Mutex
	years map[int]*numberBlock
	known map[int]*numberStream // what this process last saw of each year's stream
}

type numberBlock struct{ next, last uint64 }

// numberStream is the tail of a year's number stream: enough to reserve the next block
// without reading the stream again; a conflict says it is stale.
type numberStream struct {
	revision eventstore.Revision
	version  uint64
	lastHash string
	lastTo   uint64
}

// NewNumbers allocates through store; blockSize 0 means 20; now stamps reservations.
func NewNumbers(store eventstore.Store, blockSize uint64, owner string, now func() time.Time) *Numbers {
	if blockSize == 0 {
		blockSize = 20
	}
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	return &Numbers{store: store, blockSize: blockSize, owner: owner, now: now, years: make(map[int]*numberBlock), known: make(map[int]*numberStream)}
}

// Next returns the next number for a ticket created at instant at (year in UTC).
func (n *Numbers) Next(ctx context.Context, at time.Time) (string, error) {
	year := at.UTC().Year()
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.years[year]
	if b == nil || b.next > b.last {
		var err error
		if b, err = n.reserve(ctx, year); err != nil {
			return "", fmt.Errorf("allocate ticket number: %w", err)
		}
		n.years[year] = b
	}
	num := b.next
	b.next++
	return domain.FormatTicketNumber(year, num), nil
}

func (n *Numbers) reserve(ctx context.Context, year int) (*numberBlock, error) {
	stream := domain.NumberStream(year)
	for attempt := 1; ; attempt++ {
		known := n.known[year]
		if known == nil {
			var err error
			if known, err = n.load(ctx, stream); err != nil {
				return nil, err
			}
			n.known[year] = known
		}
		block := domain.NumberBlockReserved{Year: year, From: known.lastTo + 1, To: known.lastTo + n.blockSize, Owner: n.owner}
		meta := domain.Metadata{CommandID: fmt.Sprintf("%s-%d", stream, block.From), Actor: "system", At: n.now()}
		evs, err := domain.NewEvents(stream, known.version, known.lastHash, meta, func(int) string {
			return DeriveID(meta.CommandID, stream, n.owner)
		}, []domain.Payload{block})
		if err != nil {
			return nil, err
		}
		data, err := encode(evs)
		if err != nil {
			return nil, err
		}
		res, err := n.store.Append(ctx, stream, known.revision, data)
		switch {
		case err == nil:
			n.known[year] = &numberStream{revision: res.Revision, version: evs[0].Sequence, lastHash: evs[0].Hash, lastTo: block.To}
			return &numberBlock{next: block.From, last: block.To}, nil
		case (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate)) && attempt < 100:
			delete(n.known, year) // another process reserved first: read again, take the next block
		default:
			return nil, err
		}
	}
}

func (n *Numbers) load(ctx context.Context, stream string) (*numberStream, error) {
	events, rev, err := loadStream(ctx, n.store, stream)
	if err != nil {
		return nil, err
	}
	s := &numberStream{revision: rev, version: uint64(len(events))}
	for _, e := range events {
		if p, ok := e.Payload.(domain.NumberBlockReserved); ok && p.To > s.lastTo {
			s.lastTo = p.To
		}
		s.lastHash = e.Hash
	}
	return s, nil
}
