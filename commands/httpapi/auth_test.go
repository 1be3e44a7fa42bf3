package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
)

// issue creates a token directly through the handler (as ticketd's bootstrap does).
func (s *stack) issue(t *testing.T, role domain.Role, requester string) string {
	t.Helper()
	tok, err := s.handler.IssueToken(context.Background(), string(role)+"-user", role, requester, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// Every role against every kind of call: allowed, 401 without a valid token, 403 for a
// role without the permission; a refused call stores nothing.
func TestAccessMatrix(t *testing.T) {
	s := newStackWith(t, true)
	admin := s.issue(t, domain.RoleAdmin, "")
	ticket := s.createTicket(t, validTicket(), bearer(admin)...)

	type call struct {
		kind   string
		method string
		path   func() string
		body   string
	}
	fixed := func(p string) func() string { return func() string { return p } }
	calls := []call{
		{"command", "POST", fixed("/v1/tickets/" + ticket.ID + "/comments"), `{"body":"note"}`},
		{"read", "GET", fixed("/v1/tickets?limit=1"), ""},
		{"read", "POST", fixed("/v1/what-if"), `{"sla":{"name":"W","default":true,"calendar":{"timezone":"UTC","hours":{"Monday":[["09:00","17:00"]]}},"priorities":[{"name":"Medium","response":"1h","resolution":"2h","default":true}]}}`},
		{"history", "GET", fixed("/v1/tickets/" + ticket.ID + "/events"), ""},
		{"reference", "POST", fixed("/v1/ticket-types"), ""}, // body set per role (unique names)
		{"tokens", "GET", fixed("/v1/tokens"), ""},
		{"portal", "GET", fixed("/v1/portal/tickets"), ""},
	}
	allowed := map[domain.Role][]string{
		domain.RoleAdmin:    {"command", "read", "history", "reference", "tokens"},
		domain.RoleService:  {"command", "read"},
		domain.RoleAgent:    {"command", "read"},
		domain.RoleAnalyst:  {"read"},
		domain.RoleAuditor:  {"read", "history"},
		domain.RoleCustomer: {"portal"},
	}
	for _, role := range domain.Roles {
		requester := ""
		if role == domain.RoleCustomer {
			requester = "ann@example.com"
		}
		token := s.issue(t, role, requester)
		for _, c := range calls {
			body := c.body
			if c.kind == "reference" {
				body = `{"name":"Type for ` + string(role) + `"}`
			}
			ok := false
			for _, k := range allowed[role] {
				ok = ok || k == c.kind
			}
			before := s.position(t)
			res := s.do(t, c.method, c.path(), nilIfEmpty(body), bearer(token)...)
			switch {
			case ok && res.status >= 400:
				t.Errorf("%s %s %s: status %d, want allowed: %s", role, c.method, c.path(), res.status, res.body)
			case !ok:
				if res.status != http.StatusForbidden || !strings.Contains(string(res.body), httpapi.ProblemForbidden) {
					t.Errorf("%s %s %s: status %d, want 403: %s", role, c.method, c.path(), res.status, res.body)
				}
				if s.position(t) != before {
					t.Errorf("%s %s %s: a refused call stored events", role, c.method, c.path())
				}
			}
		}
	}
	// No token, a malformed one, a wrong secret, a revoked token: 401, nothing stored.
	agent, _ := s.handler.IssueToken(context.Background(), "temp", domain.RoleAgent, "", commands.Meta{})
	if err := s.handler.RevokeToken(context.Background(), agent.TokenID, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	for _, headers := range [][]string{nil, {"Authorization", "Basic abc"}, bearer("tkc_nope_nope"), bearer(admin + "x"), bearer(agent.Token)} {
		for _, c := range calls {
			before := s.position(t)
			res := s.do(t, c.method, c.path(), nilIfEmpty(c.body), headers...)
			if res.status != http.StatusUnauthorized || res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%v %s %s: status %d, want 401", headers, c.method, c.path(), res.status)
			}
			if s.position(t) != before {
				t.Errorf("an unauthenticated call stored events")
			}
		}
	}
	// The health check stays public.
	if res := s.do(t, "GET", "/healthz", nil); res.status != http.StatusOK {
		t.Errorf("healthz: %d", res.status)
	}
	// Events record the authenticated actor, not what the caller claims.
	s.ok(t, 200, "POST", "/v1/tickets/"+ticket.ID+"/comments", `{"body":"who am I"}`, append(bearer(admin), "X-Actor", "someone-else")...)
	events, _ := s.handler.TicketEvents(context.Background(), ticket.ID)
	if last := events[len(events)-1]; last.Actor != "admin:admin-user" {
		t.Errorf("actor = %q, want the token's principal", last.Actor)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// The portal shows a requester their own tickets, never internal comments or agent
// fields, and not other requesters' tickets.
func TestPortal(t *testing.T) {
	s := newStackWith(t, true)
	agent := s.issue(t, domain.RoleAgent, "")
	ann := s.issue(t, domain.RoleCustomer, "ann@example.com")
	bob := s.issue(t, domain.RoleCustomer, "bob@example.com")

	ticket := s.createTicket(t, validTicket(), bearer(agent)...) // raised by ann@example.com
	s.ok(t, 200, "POST", "/v1/tickets/"+ticket.ID+"/comments", `{"body":"INTERNAL: customer is difficult"}`, bearer(agent)...)
	s.ok(t, 200, "POST", "/v1/tickets/"+ticket.ID+"/assign", `{"assignee":"secret-agent"}`, bearer(agent)...)
	s.ok(t, 200, "POST", "/v1/tickets/"+ticket.ID+"/replies", `{"body":"We are on it."}`, bearer(agent)...)

	res := s.ok(t, 200, "GET", "/v1/portal/tickets/"+ticket.ID, nil, bearer(ann)...)
	body := string(res.body)
	for _, leak := range []string{"INTERNAL", "secret-agent", "comments", "assignees", "agreement_status", "actor", "sla"} {
		if strings.Contains(body, leak) {
			t.Errorf("the portal view shows %q: %s", leak, body)
		}
	}
	if !strings.Contains(body, "We are on it.") {
		t.Errorf("the portal view lacks the agent's reply: %s", body)
	}
	// Ann answers through the portal; it reopens the conversation.
	res = s.ok(t, 200, "POST", "/v1/portal/tickets/"+ticket.ID+"/messages", `{"body":"Thanks, still smoking."}`, bearer(ann)...)
	if !strings.Contains(string(res.body), `"status": "Open"`) || strings.Contains(string(res.body), "INTERNAL") {
		t.Errorf("after ann's message: %s", res.body)
	}
	// Bob sees nothing of Ann's ticket, not even that it exists.
	s.refused(t, 404, httpapi.ProblemNotFound, "GET", "/v1/portal/tickets/"+ticket.ID, nil, bearer(bob)...)
	s.refused(t, 404, httpapi.ProblemNotFound, "POST", "/v1/portal/tickets/"+ticket.ID+"/messages", `{"body":"hi"}`, bearer(bob)...)
	if list := s.ok(t, 200, "GET", "/v1/portal/tickets", nil, bearer(bob)...); !strings.Contains(string(list.body), `"total": 0`) {
		t.Errorf("bob's list: %s", list.body)
	}
	// A portal creation is raised by the token's requester, whatever the body says.
	created := s.ok(t, 201, "POST", "/v1/portal/tickets", `{"subject":"New","description":"From the portal"}`, bearer(bob)...)
	if !strings.Contains(string(created.body), `"subject": "New"`) {
		t.Errorf("portal create: %s", created.body)
	}
	if list := s.ok(t, 200, "GET", "/v1/portal/tickets", nil, bearer(bob)...); !strings.Contains(string(list.body), `"total": 1`) {
		t.Errorf("bob's list after creating: %s", list.body)
	}
	// Agents do not use the portal.
	s.refused(t, 403, httpapi.ProblemForbidden, "GET", "/v1/portal/tickets", nil, bearer(agent)...)
}
