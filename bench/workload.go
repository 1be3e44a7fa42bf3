// Package bench measures the ticketing core on a generated support-centre workload,
// through the real handlers into the embedded JetStream store, and measures the raw
// JetStream operations on the same events in the same run, so every figure is also a
// ratio against a baseline taken on the same machine at the same time.
package bench

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// Step is one command of the workload, addressed to the workload's ticket index.
type Step struct {
	Ticket int
	At     time.Duration // offset from the start of the workload
	Cmd    domain.TicketCommand
	Create *domain.CreateTicket
}

// Workload is a time-ordered list of commands over many tickets.
type Workload struct {
	Tickets int
	Steps   []Step
}

var (
	customers  = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"}
	priorities = []string{"Low", "Medium", "High"}
	words      = strings.Fields("printer invoice login password error export report delay order refund shipping account access network email update install license backup server")
)

func sentence(rng *rand.Rand, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[rng.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

// Generate builds a realistic workload: each ticket lives through create, reply,
// customer message, reply, (hold and customer message, or a second exchange), resolve
// and close — 8 commands, so 8 events of 500 to 950 bytes — and tickets overlap in time
// as they do in a real support centre, so their events interleave in the store.
func Generate(tickets int, seed uint64) Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := Workload{Tickets: tickets}
	for i := range tickets {
		at := time.Duration(i) * 30 * time.Second // a new ticket every 30 s on average
		next := func() time.Duration {
			at += time.Duration(5+rng.IntN(240)) * time.Minute
			return at
		}
		create := &domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject:     sentence(rng, 5),
			Description: sentence(rng, 20),
			RaisedBy:    fmt.Sprintf("user%d@%s.example.com", rng.IntN(5000), strings.ToLower(customers[i%len(customers)])),
			Priority:    priorities[rng.IntN(len(priorities))],
			Customer:    customers[i%len(customers)],
			Channel:     domain.ChannelEmail,
		}}
		w.Steps = append(w.Steps, Step{Ticket: i, At: at, Create: create})
		add := func(cmd domain.TicketCommand) { w.Steps = append(w.Steps, Step{Ticket: i, At: next(), Cmd: cmd}) }
		add(domain.SendReply{Body: sentence(rng, 25)})
		add(domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: sentence(rng, 20)})
		add(domain.SendReply{Body: sentence(rng, 25)})
		if rng.IntN(2) == 0 {
			add(domain.HoldTicket{Reason: "waiting for the customer"})
		} else {
			add(domain.AddComment{Body: sentence(rng, 12)})
		}
		add(domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: sentence(rng, 15)})
		add(domain.ResolveTicket{ResolutionDetails: sentence(rng, 10)})
		add(domain.CloseTicket{Reason: "done"})
	}
	sort.SliceStable(w.Steps, func(a, b int) bool { return w.Steps[a].At < w.Steps[b].At })
	return w
}
