// Package bench measures the ticketing core on a generated support-centre workload,
// through the real handlers into the embedded JetStream store, and measures the raw
// JetStream operations on the same events in the same run, so every figure is also a
// ratio against a baseline taken on the same machine at the same time.
package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// Step is one command of the workload, addressed to the workload's ticket index. It
// holds no pointers, and neither does the workload's text. A run keeps the whole
// workload in the heap of the process it measures: when each step held its command and
// texts, that was 1.8 million objects for 110 000 tickets, which the garbage collector
// marked on every cycle, a cost of the harness that a client sending its commands does
// not put on the system under test. Command builds a step's command when it is sent.
type Step struct {
	At time.Duration // offset from the start of the workload
	// The step's texts, as spans of Workload.text: a creation's subject and
	// description, or another command's body (or resolution) first.
	text   [2]textSpan
	Ticket int32
	// A creation's raised_by user and priority.
	user     uint16
	Kind     StepKind
	priority uint8
}

// StepKind is the command a step sends.
type StepKind uint8

const (
	StepCreate StepKind = iota
	StepReply
	StepCustomerMessage
	StepHold
	StepComment
	StepResolve
	StepClose
)

type textSpan struct{ start, end uint32 }

// Workload is a time-ordered list of commands over many tickets.
type Workload struct {
	Tickets int
	Steps   []Step
	text    []byte // every step's texts, end to end
}

var (
	customers  = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"}
	priorities = []string{"Low", "Medium", "High"}
	words      = strings.Fields("printer invoice login password error export report delay order refund shipping account access network email update install license backup server")
)

// sentence appends n random words to the workload's text and returns their span.
func (w *Workload) sentence(rng *rand.Rand, n int) textSpan {
	start := len(w.text)
	for i := range n {
		if i > 0 {
			w.text = append(w.text, ' ')
		}
		w.text = append(w.text, words[rng.IntN(len(words))]...)
	}
	if len(w.text) > math.MaxUint32 {
		panic("bench: a workload's text is limited to 4 GiB (about 4.5 million tickets)")
	}
	return textSpan{uint32(start), uint32(len(w.text))}
}

func (w Workload) str(t textSpan) string { return string(w.text[t.start:t.end]) }

// Command is the command s sends: a creation, or a command on an existing ticket.
func (w Workload) Command(s Step) (create *domain.CreateTicket, cmd domain.TicketCommand) {
	switch s.Kind {
	case StepCreate:
		customer := customers[int(s.Ticket)%len(customers)]
		return &domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject:     w.str(s.text[0]),
			Description: w.str(s.text[1]),
			RaisedBy:    fmt.Sprintf("user%d@%s.example.com", s.user, strings.ToLower(customer)),
			Priority:    priorities[s.priority],
			Customer:    customer,
			Channel:     domain.ChannelEmail,
		}}, nil
	case StepReply:
		return nil, domain.SendReply{Body: w.str(s.text[0])}
	case StepCustomerMessage:
		return nil, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: w.str(s.text[0])}
	case StepHold:
		return nil, domain.HoldTicket{Reason: "waiting for the customer"}
	case StepComment:
		return nil, domain.AddComment{Body: w.str(s.text[0])}
	case StepResolve:
		return nil, domain.ResolveTicket{ResolutionDetails: w.str(s.text[0])}
	default:
		return nil, domain.CloseTicket{Reason: "done"}
	}
}

// Generate builds a realistic workload: each ticket lives through create, reply,
// customer message, reply, (hold and customer message, or a second exchange), resolve
// and close — 8 commands, so 8 events of 500 to 950 bytes — and tickets overlap in time
// as they do in a real support centre, so their events interleave in the store.
func Generate(tickets int, seed uint64) Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := Workload{Tickets: tickets, Steps: make([]Step, 0, 8*tickets), text: make([]byte, 0, 960*tickets)}
	for i := range tickets {
		at := time.Duration(i) * 30 * time.Second // a new ticket every 30 s on average
		create := Step{Ticket: int32(i), At: at, Kind: StepCreate}
		create.text[0], create.text[1] = w.sentence(rng, 5), w.sentence(rng, 20)
		create.user, create.priority = uint16(rng.IntN(5000)), uint8(rng.IntN(len(priorities)))
		w.Steps = append(w.Steps, create)
		// The random draws are in the order of the earlier generator, which built each
		// command before drawing its time: the same seed gives the same workload.
		add := func(kind StepKind, words int) {
			s := Step{Ticket: int32(i), Kind: kind}
			if words > 0 {
				s.text[0] = w.sentence(rng, words)
			}
			at += time.Duration(5+rng.IntN(240)) * time.Minute
			s.At = at
			w.Steps = append(w.Steps, s)
		}
		add(StepReply, 25)
		add(StepCustomerMessage, 20)
		add(StepReply, 25)
		if rng.IntN(2) == 0 {
			add(StepHold, 0)
		} else {
			add(StepComment, 12)
		}
		add(StepCustomerMessage, 15)
		add(StepResolve, 10)
		add(StepClose, 0)
	}
	sort.SliceStable(w.Steps, func(a, b int) bool { return w.Steps[a].At < w.Steps[b].At })
	return w
}
