package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
)

type ruleBody struct {
	Version int `json:"version"`
	domain.AssignmentRuleDefinition
}

func TestAssignmentRuleEndpoints(t *testing.T) {
	s := newStack(t)
	const path = "/v1/assignment-rules/Support%20rota"
	body := map[string]any{
		"priority": 10, "method": "round_robin", "users": []string{"ann", "bob"},
		"condition": `ticket_type == "Bug"`, "unassign_condition": `status == "Closed"`,
	}

	res := s.ok(t, http.StatusCreated, "PUT", path, body)
	var got ruleBody
	res.decode(t, &got)
	if got.Version != 1 || got.Name != "Support rota" || got.Method != domain.MethodRoundRobin || len(got.Users) != 2 {
		t.Fatalf("created %+v", got)
	}
	if loc := res.header.Get("Location"); loc != path {
		t.Fatalf("Location %q", loc)
	}
	// The same rule again: 200, same version, nothing stored.
	before := s.position(t)
	s.ok(t, http.StatusOK, "PUT", path, body).decode(t, &got)
	if got.Version != 1 || s.position(t) != before {
		t.Fatalf("unchanged PUT: version %d, %d events", got.Version, s.position(t)-before)
	}
	// Changed: version 2.
	body["users"] = []string{"ann", "bob", "cid"}
	s.ok(t, http.StatusOK, "PUT", path, body).decode(t, &got)
	if got.Version != 2 || len(got.Users) != 3 {
		t.Fatalf("changed %+v", got)
	}
	s.ok(t, http.StatusCreated, "PUT", "/v1/assignment-rules/Types", map[string]any{
		"priority": 1, "method": "by_field", "field": "ticket_type", "field_map": map[string]string{"Bug": "dev-team"}})

	var list []ruleBody
	s.ok(t, http.StatusOK, "GET", "/v1/assignment-rules", nil).decode(t, &list)
	if len(list) != 2 || list[0].Name != "Types" || list[1].Name != "Support rota" || list[1].Version != 2 {
		t.Fatalf("list (priority order) %+v", list)
	}
	s.ok(t, http.StatusOK, "GET", path, nil).decode(t, &got)
	if got.Condition != `ticket_type == "Bug"` || got.UnassignCondition != `status == "Closed"` {
		t.Fatalf("get %+v", got)
	}

	// Refused, nothing stored.
	p := s.refused(t, 422, httpapi.ProblemValidation, "PUT", path, map[string]any{
		"method": "round_robin", "users": []string{"ann"}, "condition": `ticket_type == "Bug" &&& priority == "High"`})
	if !hasField(p, "condition") || !strings.Contains(p.Errors[0].Message, "line 1, column ") {
		t.Fatalf("bad expression: %+v", p)
	}
	p = s.refused(t, 422, httpapi.ProblemValidation, "PUT", path, map[string]any{
		"method": "round_robin", "users": []string{"ann"}, "unassign_condition": "stauts == \"Closed\""})
	if !hasField(p, "unassign_condition") || !strings.Contains(p.Errors[0].Message, "line 1, column 1: unknown name stauts") {
		t.Fatalf("unknown field: %+v", p)
	}
	p = s.refused(t, 422, httpapi.ProblemValidation, "PUT", "/v1/assignment-rules/X", map[string]any{"method": "magic"})
	if !hasField(p, "method") {
		t.Fatalf("bad method: %+v", p)
	}
	p = s.refused(t, 422, httpapi.ProblemValidation, "PUT", "/v1/assignment-rules/X", map[string]any{"name": "Y", "method": "round_robin", "users": []string{"a"}})
	if !hasField(p, "name") {
		t.Fatalf("name mismatch: %+v", p)
	}
	s.refused(t, 400, httpapi.ProblemMalformed, "PUT", "/v1/assignment-rules/X", `{"method":"round_robin","users":["a"],"colour":"red"}`)
	s.refused(t, 409, httpapi.ProblemConflict, "PUT", "/v1/assignment-rules/support%20ROTA", body)
	s.refused(t, 404, httpapi.ProblemNotFound, "GET", "/v1/assignment-rules/Nope", nil)

	s.ok(t, http.StatusNoContent, "DELETE", path, nil)
	s.refused(t, 404, httpapi.ProblemNotFound, "DELETE", path, nil)
	s.refused(t, 404, httpapi.ProblemNotFound, "GET", path, nil)
	s.ok(t, http.StatusOK, "GET", "/v1/assignment-rules", nil).decode(t, &list)
	if len(list) != 1 {
		t.Fatalf("list after delete %+v", list)
	}
}

func TestUnrepliedAlertSetting(t *testing.T) {
	s := newStack(t)
	var got domain.SupportSettings
	s.ok(t, http.StatusOK, "PUT", "/v1/settings", map[string]any{"auto_close_days": 5, "unreplied_alert_minutes": 45}).decode(t, &got)
	if got.UnrepliedAlertMinutes != 45 || got.AutoCloseDays != 5 {
		t.Fatalf("settings %+v", got)
	}
	p := s.refused(t, 422, httpapi.ProblemValidation, "PUT", "/v1/settings", map[string]any{"auto_close_days": 5, "unreplied_alert_minutes": -5})
	if !hasField(p, "unreplied_alert_minutes") {
		t.Fatalf("problem %+v", p)
	}
}

// Rules are reference data: agents read them, only admins change them.
func TestAssignmentRuleAccess(t *testing.T) {
	s := newStackWith(t, true)
	admin, agent := s.issue(t, domain.RoleAdmin, ""), s.issue(t, domain.RoleAgent, "")
	rule := map[string]any{"method": "load_balancing", "users": []string{"ann"}}
	s.refused(t, 403, httpapi.ProblemForbidden, "PUT", "/v1/assignment-rules/LB", rule, bearer(agent)...)
	s.ok(t, http.StatusCreated, "PUT", "/v1/assignment-rules/LB", rule, bearer(admin)...)
	s.ok(t, http.StatusOK, "GET", "/v1/assignment-rules", nil, bearer(agent)...)
	s.refused(t, 403, httpapi.ProblemForbidden, "DELETE", "/v1/assignment-rules/LB", nil, bearer(agent)...)
	s.refused(t, 401, httpapi.ProblemUnauthenticated, "GET", "/v1/assignment-rules/LB", nil)
}
