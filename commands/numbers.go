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

	mu    sync.Mutex
	years map[int]*numberBlock
}

type numberBlock struct{ next, last uint64 }

// NewNumbers allocates through store; blockSize 0 means 20.
func NewNumbers(store eventstore.Store, blockSize uint64, owner string) *Numbers {
	if blockSize == 0 {
		blockSize = 20
	}
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	return &Numbers{store: store, blockSize: blockSize, owner: owner, years: make(map[int]*numberBlock)}
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
		events, rev, err := loadStream(ctx, n.store, stream)
		if err != nil {
			return nil, err
		}
		var last uint64
		prevHash := ""
		for _, e := range events {
			if p, ok := e.Payload.(domain.NumberBlockReserved); ok && p.To > last {
				last = p.To
			}
			prevHash = e.Hash
		}
		block := domain.NumberBlockReserved{Year: year, From: last + 1, To: last + n.blockSize, Owner: n.owner}
		meta := domain.Metadata{CommandID: fmt.Sprintf("%s-%d", stream, block.From), Actor: "system", At: time.Now()}
		evs, err := domain.NewEvents(stream, uint64(len(events)), prevHash, meta, func(int) string {
			return DeriveID(meta.CommandID, stream, n.owner)
		}, []domain.Payload{block})
		if err != nil {
			return nil, err
		}
		data, err := encode(evs)
		if err != nil {
			return nil, err
		}
		_, err = n.store.Append(ctx, stream, rev, data)
		switch {
		case err == nil:
			return &numberBlock{next: block.From, last: block.To}, nil
		case (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate)) && attempt < 100:
			continue // another process reserved first: take the next block
		default:
			return nil, err
		}
	}
}
