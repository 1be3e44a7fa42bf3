package kurrentdb

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ticketcore/ticketcore/eventstore"
)

// positionScale turns $all commit positions into the port's global positions:
//
//	Position = commit position of the first event of its append * positionScale
//	         + offset of the event in that append
//
// KurrentDB gives every event of an AppendToStream its own commit position, the
// transaction-log byte offset of its record (commit = prepare position for such
// events), so commit positions are large, sparse and strictly increasing. The port
// also wants the events of one append at consecutive positions (the conformance
// suite checks LastPosition-n+1..LastPosition), which byte offsets are not; the
// scale leaves room for the offsets, and a position decodes back to a real record
// boundary of the log (position / positionScale) to start a read from.
const positionScale = 10_000

// maxAppendEvents bounds an append, so that the offsets of its events (0 to
// maxAppendEvents-1) and the offset just after its last one (from = Position+1, as
// followers resume) stay below positionScale and decode to the append's first commit
// position.
const maxAppendEvents = positionScale - 1

// maxCommitPosition is the largest commit position that still encodes without
// overflow, with room for Position+1: about 1.8 PB of transaction log.
const maxCommitPosition = (math.MaxUint64 - positionScale) / positionScale

// noPosition is what the client reports for an event the server gave no $all
// position (stream reads before EventStoreDB 22.6, events of explicit transactions).
const noPosition = math.MaxUint64

// encodePosition is the port position of the event at offset in the append whose
// first event has commit position base.
func encodePosition(base uint64, offset int) (uint64, error) {
	if base > maxCommitPosition {
		return 0, fmt.Errorf("commit position %d is beyond what the adapter can encode (%d)", base, uint64(maxCommitPosition))
	}
	if offset < 0 || offset >= maxAppendEvents {
		return 0, fmt.Errorf("offset %d in an append is out of range", offset)
	}
	return base*positionScale + uint64(offset), nil
}

// startCommit is the commit position a read for positions >= from starts at: the
// first event of the append from belongs to (or follows), a record boundary for any
// position the store handed out and for that position + 1. 0 is the start of $all.
func startCommit(from uint64) uint64 {
	return from / positionScale
}

// Revisions: the port's Revision is the KurrentDB stream revision (event number) of
// the stream's last event + 1, so NoStream (0) is "no event yet" and a stream's
// revision is also the event number its next event will have.

// expectedRevision maps the port's expected revision to the client's.
func expectedRevision(r eventstore.Revision) esdb.ExpectedRevision {
	switch r {
	case eventstore.AnyRevision:
		return esdb.Any{}
	case eventstore.NoStream:
		return esdb.NoStream{}
	}
	return esdb.StreamRevision{Value: uint64(r) - 1}
}

// portRevision is the port's revision of the stream once the event with KurrentDB
// event number n is stored.
func portRevision(n uint64) eventstore.Revision {
	return eventstore.Revision(n + 1)
}

// appendMetadata is the user metadata of event i of an append of n events (n > 1).
// Events of single-event appends carry none: no metadata means "first of its append".
func appendMetadata(i, n int) []byte {
	b := make([]byte, 0, 40)
	b = append(b, `{"appendIndex":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"appendCount":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// appendIndex reads the event's index in its append from its metadata; events
// without it (single-event appends, other writers) are first of their append.
func appendIndex(metadata []byte) int {
	if len(metadata) == 0 {
		return 0
	}
	var m struct {
		Index *int `json:"appendIndex"`
		Count *int `json:"appendCount"`
	}
	if json.Unmarshal(metadata, &m) != nil || m.Index == nil || m.Count == nil {
		return 0
	}
	if *m.Index < 0 || *m.Index >= *m.Count || *m.Count > maxAppendEvents {
		return 0
	}
	return *m.Index
}

// checkPosition rejects events whose $all position the adapter cannot use.
func checkPosition(ev *esdb.RecordedEvent) error {
	switch p := ev.Position; {
	case p.Commit == noPosition:
		return fmt.Errorf("event %d of %s has no $all position: EventStoreDB 22.6 or later (any KurrentDB) is needed", ev.EventNumber, ev.StreamID)
	case p.Commit != p.Prepare:
		return fmt.Errorf("event %d of %s was written in an explicit transaction (commit %d, prepare %d), which the adapter does not support", ev.EventNumber, ev.StreamID, p.Commit, p.Prepare)
	}
	return nil
}

// chain computes port positions of events read in order (from $all or from one
// stream): an event continues the append of the previous event it was given when it
// is the next event of the same stream and the next index of the same append;
// otherwise it starts an append of its own. Reads start at an append's first event
// (startCommit), so they see appends whole; an event whose predecessors in its
// append are missing (truncated stream, below Config.StartPosition) starts a new
// one, the same way for every read.
type chain struct {
	started  bool
	stream   string
	revision uint64 // event number of the previous event
	index    int    // its index in its append, from the metadata
	base     uint64 // commit position of the first event of the current append
	offset   int    // offset of the previous event from base
}

// next returns the port position of ev, which follows the events already given.
func (c *chain) next(ev *esdb.RecordedEvent) (uint64, error) {
	if err := checkPosition(ev); err != nil {
		return 0, err
	}
	index := appendIndex(ev.UserMetadata)
	if c.started && index > 0 && index == c.index+1 && ev.StreamID == c.stream && ev.EventNumber == c.revision+1 && c.offset+1 < maxAppendEvents {
		c.offset++
	} else {
		c.base, c.offset = ev.Position.Commit, 0
	}
	c.started, c.stream, c.revision, c.index = true, ev.StreamID, ev.EventNumber, index
	return encodePosition(c.base, c.offset)
}

// continues reports whether older, read right before newer (backwards), belongs to
// the same append under the rule of chain.next.
func continues(older, newer *esdb.RecordedEvent) bool {
	ni := appendIndex(newer.UserMetadata)
	return ni > 0 && appendIndex(older.UserMetadata) == ni-1 &&
		older.StreamID == newer.StreamID && older.EventNumber+1 == newer.EventNumber
}

// after reports whether a comes after b in $all.
func after(a, b esdb.Position) bool {
	return a.Commit > b.Commit || a.Commit == b.Commit && a.Prepare > b.Prepare
}
