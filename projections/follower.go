package projections

import "github.com/ticketcore/ticketcore/domain"

// Follower passes every event the runner reads to Fold, for state kept outside the
// read models: the command handler's catalogues and its cache of decision states.
// It has no checkpoint of its own (its Position is the highest there is), so it never
// makes the runner read from further back than its other projections need.
type Follower struct {
	Label string
	Fold  func(e domain.Event, pos uint64)
}

func (f Follower) Name() string { return f.Label }

func (f Follower) Apply(e domain.Event, pos uint64) error {
	f.Fold(e, pos)
	return nil
}

func (f Follower) Position() uint64 { return ^uint64(0) }

func (f Follower) Reset() {}
