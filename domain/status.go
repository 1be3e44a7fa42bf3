package domain

// Status is a ticket status of the spec.
type Status string

const (
	StatusOpen     Status = "Open"
	StatusReplied  Status = "Replied"
	StatusOnHold   Status = "On Hold"
	StatusResolved Status = "Resolved"
	StatusClosed   Status = "Closed"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusOpen, StatusReplied, StatusOnHold, StatusResolved, StatusClosed}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}
