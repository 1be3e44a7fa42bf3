package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// The customer portal: a requester, authenticated by a customer token that names
// their email address, sees and answers their own tickets. Internal comments, agents,
// assignees and SLA internals never leave through these endpoints: the portal view is
// built from an allow-list of fields, not by hiding fields of the agent view.

// PortalTicket is a ticket as its requester sees it.
type PortalTicket struct {
	ID                string          `json:"id"`
	Number            string          `json:"number"`
	Subject           string          `json:"subject"`
	Status            domain.Status   `json:"status"`
	OpenedAt          time.Time       `json:"opened_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	ResolutionDetails string          `json:"resolution_details,omitempty"`
	Thread            []PortalMessage `json:"thread,omitempty"`
}

// PortalMessage is a thread message as the requester sees it.
type PortalMessage struct {
	MessageID   string              `json:"message_id"`
	Direction   domain.Direction    `json:"direction"`
	At          time.Time           `json:"at"`
	From        string              `json:"from,omitempty"`
	Subject     string              `json:"subject,omitempty"`
	Body        string              `json:"body"`
	HTMLBody    string              `json:"html_body,omitempty"`
	Attachments []domain.Attachment `json:"attachments,omitempty"`
}

func portalView(v projections.TicketView) PortalTicket {
	p := PortalTicket{ID: v.ID, Number: v.Number, Subject: v.Subject, Status: v.Status, OpenedAt: v.OpenedAt,
		UpdatedAt: v.UpdatedAt, ResolutionDetails: v.Resolution}
	for _, m := range v.Thread {
		p.Thread = append(p.Thread, PortalMessage{MessageID: m.MessageID, Direction: m.Direction, At: m.At, From: m.From,
			Subject: m.Subject, Body: m.Body, HTMLBody: m.HTMLBody, Attachments: m.Attachments})
	}
	return p
}

func (s *Server) registerPortal(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/portal/tickets", s.handle(s.portalList))
	mux.HandleFunc("POST /v1/portal/tickets", s.handle(s.portalCreate))
	mux.HandleFunc("GET /v1/portal/tickets/{id}", s.handle(s.portalGet))
	mux.HandleFunc("POST /v1/portal/tickets/{id}/messages", s.handle(s.portalMessage))
}

// requester is the email address of the portal caller.
func requester(r *http.Request) (string, error) {
	p, ok := principalFrom(r.Context())
	if !ok || p.Role != domain.RoleCustomer || p.Requester == "" {
		return "", fmt.Errorf("the portal needs a customer token: %w", domain.ErrForbidden)
	}
	return p.Requester, nil
}

// ownTicket returns the requester's ticket; another requester's ticket is "not found",
// so the portal does not even reveal that it exists.
func (s *Server) ownTicket(r *http.Request) (projections.TicketView, error) {
	who, err := requester(r)
	if err != nil {
		return projections.TicketView{}, err
	}
	v, err := s.ticketView(r.Context(), r.PathValue("id"), time.Time{})
	if err != nil || !strings.EqualFold(v.RaisedBy, who) {
		return projections.TicketView{}, fmt.Errorf("ticket %s: %w", r.PathValue("id"), domain.ErrNotFound)
	}
	return v, nil
}

func (s *Server) portalList(w http.ResponseWriter, r *http.Request) error {
	who, err := requester(r)
	if err != nil {
		return err
	}
	page := s.Tickets.List(projections.Filter{RaisedBy: who, Limit: 1000, NewestFirst: true}, s.Clock())
	out := make([]PortalTicket, 0, len(page.Tickets))
	for _, v := range page.Tickets {
		out = append(out, portalView(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tickets": out, "total": page.Total})
	return nil
}

func (s *Server) portalGet(w http.ResponseWriter, r *http.Request) error {
	v, err := s.ownTicket(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, portalView(v))
	return nil
}

func (s *Server) portalCreate(w http.ResponseWriter, r *http.Request) error {
	who, err := requester(r)
	if err != nil {
		return err
	}
	var body struct {
		Subject     string              `json:"subject"`
		Description string              `json:"description"`
		Attachments []domain.Attachment `json:"attachments,omitempty"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	res, err := s.Handler.CreateTicket(r.Context(), domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: body.Subject, Description: body.Description, RaisedBy: who, Channel: domain.ChannelPortal, ViaPortal: true,
	}, Attachments: body.Attachments}, m)
	if err != nil {
		return err
	}
	return s.respondPortal(w, r, http.StatusCreated, res.TicketID, res.Position)
}

func (s *Server) portalMessage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.ownTicket(r); err != nil {
		return err
	}
	who, _ := requester(r)
	var body struct {
		Body        string              `json:"body"`
		HTMLBody    string              `json:"html_body,omitempty"`
		Attachments []domain.Attachment `json:"attachments,omitempty"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	res, err := s.Handler.Execute(r.Context(), r.PathValue("id"), domain.ReceiveCustomerMessage{
		Channel: domain.ChannelPortal, From: who, Body: body.Body, HTMLBody: body.HTMLBody, Attachments: body.Attachments}, m)
	if err != nil {
		return err
	}
	return s.respondPortal(w, r, http.StatusOK, res.TicketID, res.Position)
}

func (s *Server) respondPortal(w http.ResponseWriter, r *http.Request, status int, id string, pos uint64) error {
	if err := s.waitFor(r.Context(), pos); err != nil {
		return err
	}
	v, err := s.ticketView(r.Context(), id, time.Time{})
	if err != nil {
		return err
	}
	writeJSON(w, status, portalView(v))
	return nil
}
