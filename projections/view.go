package projections

import (
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// TicketView is the JSON shape of a ticket with every metric of spec/metrics.md,
// evaluated at an instant. Field names are the spec's.
type TicketView struct {
	ID      string `json:"id"`
	Number  string `json:"number"`
	Version uint64 `json:"version"`
	domain.TicketFieldsData
	Status              domain.Status       `json:"status"`
	Assignees           []string            `json:"assignees"`
	SplitFrom           *domain.SplitOrigin `json:"split_from,omitempty"`
	SplitInto           []SplitLink         `json:"split_into,omitempty"`
	Resolution          string              `json:"resolution_details,omitempty"`
	ClosedAutomatically bool                `json:"closed_automatically,omitempty"`
	CreatedAt           time.Time           `json:"created_at"`
	UpdatedAt           time.Time           `json:"updated_at"`

	SLA                 *string    `json:"sla"`
	SLAVersion          *int       `json:"sla_version"`
	AgreementStatus     *string    `json:"agreement_status"`
	EvaluatedAt         time.Time  `json:"evaluated_at"`
	ResponseBy          *time.Time `json:"response_by"`
	ResolutionBy        *time.Time `json:"resolution_by"`
	OpenedAt            time.Time  `json:"opened_at"`
	SLAStartedAt        *time.Time `json:"sla_started_at"`
	FirstRespondedOn    *time.Time `json:"first_responded_on"`
	OnHoldSince         *time.Time `json:"on_hold_since"`
	ResolutionDate      *time.Time `json:"resolution_date"`
	Reopens             int        `json:"reopens"`
	Replies             int        `json:"replies"`
	CustomerMessages    int        `json:"customer_messages"`
	MinsToFirstResponse *float64   `json:"mins_to_first_response"`

	FirstResponseTimeCalendar  *float64 `json:"first_response_time_calendar"`
	FirstResponseTimeBusiness  *float64 `json:"first_response_time_business"`
	AvgResponseTimeCalendar    *float64 `json:"avg_response_time_calendar"`
	AvgResponseTimeBusiness    *float64 `json:"avg_response_time_business"`
	TotalHoldTimeCalendar      *float64 `json:"total_hold_time_calendar"`
	TotalHoldTimeBusiness      *float64 `json:"total_hold_time_business"`
	ResolutionTimeCalendar     *float64 `json:"resolution_time_calendar"`
	ResolutionTimeBusiness     *float64 `json:"resolution_time_business"`
	UserResolutionTimeCalendar *float64 `json:"user_resolution_time_calendar"`
	UserResolutionTimeBusiness *float64 `json:"user_resolution_time_business"`

	Thread   []ThreadMessage `json:"thread,omitempty"`
	Comments []Comment       `json:"comments,omitempty"`
}

// View renders the ticket as of instant at (agreement status is evaluated then).
// withThread adds the thread and internal comments (the detail view).
func (t *TicketState) View(at time.Time, withThread bool) TicketView {
	m := &t.Metrics
	v := TicketView{
		ID: t.ID, Number: t.Number, Version: t.Version, TicketFieldsData: t.Fields,
		Status: m.Status, Assignees: t.Assignees, SplitFrom: t.SplitFrom, SplitInto: t.SplitInto,
		Resolution: t.Resolution, ClosedAutomatically: t.ClosedAutomatically,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, EvaluatedAt: at.UTC(),
		OpenedAt: m.OpenedAt, SLAStartedAt: timePtr(m.Start),
		FirstRespondedOn: timePtr(m.FirstRespondedOn), OnHoldSince: timePtr(m.OnHoldSince()),
		ResolutionDate: timePtr(m.ResolutionDate),
		Reopens:        m.Reopens, Replies: m.Replies, CustomerMessages: m.CustomerMessages,
	}
	if !withThread || !t.withThread {
		v.Description = "" // the opening message: part of the thread
	}
	if v.Assignees == nil {
		v.Assignees = []string{}
	}
	v.Priority = m.Priority
	if t.Fields.Priority != "" {
		v.Priority = t.Fields.Priority
	}
	if m.HasSLA() {
		name, version, status := m.SLAName, m.SLAVersion, m.AgreementStatus(at)
		v.SLA, v.SLAVersion, v.AgreementStatus = &name, &version, &status
		v.ResponseBy = timePtr(m.ResponseBy)
		v.ResolutionBy = timePtr(m.ResolutionByNow())
	}
	frt := m.FirstResponseTime()
	v.FirstResponseTimeCalendar, v.FirstResponseTimeBusiness = frt.Calendar, frt.Business
	if frt.Calendar != nil {
		mins := *frt.Calendar / 60
		v.MinsToFirstResponse = &mins
	}
	avg := m.AvgResponseTime()
	v.AvgResponseTimeCalendar, v.AvgResponseTimeBusiness = avg.Calendar, avg.Business
	hold := m.TotalHoldTime()
	v.TotalHoldTimeCalendar, v.TotalHoldTimeBusiness = hold.Calendar, hold.Business
	res := m.ResolutionTime()
	v.ResolutionTimeCalendar, v.ResolutionTimeBusiness = res.Calendar, res.Business
	ures := m.UserResolutionTime()
	v.UserResolutionTimeCalendar, v.UserResolutionTimeBusiness = ures.Calendar, ures.Business
	if withThread && t.withThread {
		v.Thread, v.Comments = t.Thread, t.Comments
		if v.Thread == nil {
			v.Thread = []ThreadMessage{}
		}
		if v.Comments == nil {
			v.Comments = []Comment{}
		}
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
