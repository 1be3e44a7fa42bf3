package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 100 * time.Millisecond

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress decides whether long operations draw progress on stderr; tests replace it.
var showProgress = isTerminal

// progress shows how far a long operation (rebuild, verify, export, import, what-if)
// is, with its rate and the time left, on one line of stderr that it redraws, when
// stderr is a terminal; otherwise it stays silent and only counts. It is safe for
// concurrent use, and its zero value is not usable: call env.progress.
//
// Progress is measured in events, against a total when one is known. A resumed run
// starts at the count already done, and its rate counts only what this run did.
type progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: silent
	label string
	total uint64 // 0: unknown
	done  uint64
	base  uint64 // done when this run started
	start time.Time
	last  time.Time
	now   func() time.Time
	note  string // extra text shown after the count, e.g. "position 120 of 400"
	stop  chan struct{}
	drawn bool
}

// progress starts a progress line for an operation called label, of total events (0
// when unknown), on e's stderr if it is a terminal.
func (e *env) progress(label string, total uint64) *progress {
	p := &progress{label: label, total: total, now: time.Now}
	if showProgress(e.stderr) {
		p.w = e.stderr
	}
	p.start = p.now()
	return p
}

// resumeAt says that done events were already done by an earlier run.
func (p *progress) resumeAt(done uint64) {
	p.mu.Lock()
	p.done, p.base = done, done
	p.mu.Unlock()
}

// add counts n more events done.
func (p *progress) add(n uint64) {
	p.mu.Lock()
	p.done += n
	p.drawLocked(false)
	p.mu.Unlock()
}

// setNote sets the text shown after the count (for example the global position).
func (p *progress) setNote(note string) {
	p.mu.Lock()
	p.note = note
	p.mu.Unlock()
}

// count is the number of events done, earlier runs included.
func (p *progress) count() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// elapsed is the time since this run started.
func (p *progress) elapsed() time.Duration { return p.now().Sub(p.start) }

// rate is this run's events per second.
func (p *progress) rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rateLocked()
}

func (p *progress) rateLocked() float64 {
	secs := p.now().Sub(p.start).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(p.done-p.base) / secs
}

// ticking redraws the line every progressEvery until finish, for operations that
// cannot count (waiting for a server's answer shows the time elapsed).
func (p *progress) ticking() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return
	}
	p.stop = make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				if p.stop == stop { // not finished while this tick waited for the lock
					p.drawLocked(true)
				}
				p.mu.Unlock()
			}
		}
	}(p.stop)
}

// finish clears the progress line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	if p.w != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// line is the text of the progress line.
func (p *progress) lineLocked() string {
	elapsed := p.now().Sub(p.start)
	if p.done == 0 && p.total == 0 {
		return fmt.Sprintf("%s: %s elapsed", p.label, elapsed.Round(time.Second))
	}
	s := fmt.Sprintf("%s: %d", p.label, p.done)
	if p.total > 0 {
		s += fmt.Sprintf(" of %d events (%.1f%%)", p.total, 100*float64(p.done)/float64(p.total))
	} else {
		s += " events"
	}
	if p.note != "" {
		s += ", " + p.note
	}
	rate := p.rateLocked()
	s += fmt.Sprintf(", %.0f events/s", rate)
	if p.total > p.done && rate > 0 {
		left := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		s += ", about " + left.Round(time.Second).String() + " left"
	}
	return s
}

func (p *progress) drawLocked(force bool) {
	if p.w == nil {
		return
	}
	now := p.now()
	if !force && now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	fmt.Fprint(p.w, "\r\033[K"+p.lineLocked())
	p.drawn = true
}
