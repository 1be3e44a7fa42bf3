package domain_test

import (
	"errors"
	"testing"

	"github.com/ticketcore/ticketcore/domain"
)

func TestRolePermissions(t *testing.T) {
	want := map[domain.Role][]domain.Permission{
		domain.RoleAdmin:    {domain.PermTicketCommand, domain.PermRead, domain.PermHistory, domain.PermReference, domain.PermTokens},
		domain.RoleService:  {domain.PermTicketCommand, domain.PermRead},
		domain.RoleAgent:    {domain.PermTicketCommand, domain.PermRead},
		domain.RoleAnalyst:  {domain.PermRead},
		domain.RoleAuditor:  {domain.PermRead, domain.PermHistory},
		domain.RoleCustomer: {domain.PermPortal},
	}
	all := []domain.Permission{domain.PermTicketCommand, domain.PermRead, domain.PermHistory, domain.PermReference, domain.PermTokens, domain.PermPortal}
	for _, role := range domain.Roles {
		for _, p := range all {
			allowed := false
			for _, w := range want[role] {
				allowed = allowed || w == p
			}
			if role.Allows(p) != allowed {
				t.Errorf("%s allows %s = %v, want %v", role, p, role.Allows(p), allowed)
			}
		}
	}
	if domain.Role("root").Valid() || domain.Role("root").Allows(domain.PermRead) {
		t.Error("an unknown role must allow nothing")
	}
}

func TestTokenAuthentication(t *testing.T) {
	var s domain.TokensState
	issue := func(id, secret string, role domain.Role, requester string) {
		t.Helper()
		got, err := domain.DecideIssueToken(&s, domain.TokenIssued{TokenID: id, Name: "n-" + id, Role: role, SecretHash: domain.HashSecret(secret), Requester: requester})
		if err != nil {
			t.Fatal(err)
		}
		domain.EvolveTokens(&s, domain.Event{Sequence: s.Version + 1, Payload: got[0]})
	}
	issue("aa", "secret-a", domain.RoleAgent, "")
	issue("cc", "secret-c", domain.RoleCustomer, "ann@example.com")

	if p, ok := s.Authenticate("tkc_aa_secret-a"); !ok || p.Role != domain.RoleAgent || p.Actor() != "agent:n-aa" {
		t.Fatalf("valid token: %+v %v", p, ok)
	}
	if p, ok := s.Authenticate("tkc_cc_secret-c"); !ok || p.Requester != "ann@example.com" {
		t.Fatalf("customer token: %+v %v", p, ok)
	}
	for _, bad := range []string{"", "tkc_aa_wrong", "tkc_aa", "aa_secret-a", "tkc_zz_secret-a", "tkc_cc_secret-a"} {
		if _, ok := s.Authenticate(bad); ok {
			t.Errorf("%q authenticated", bad)
		}
	}
	got, err := domain.DecideRevokeToken(&s, "aa")
	if err != nil {
		t.Fatal(err)
	}
	domain.EvolveTokens(&s, domain.Event{Sequence: s.Version + 1, Payload: got[0]})
	if _, ok := s.Authenticate("tkc_aa_secret-a"); ok {
		t.Fatal("a revoked token still works")
	}
	if _, err := domain.DecideRevokeToken(&s, "aa"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	for name, tok := range map[string]domain.TokenIssued{
		"unknown role":             {TokenID: "x", Name: "x", Role: "root"},
		"customer without address": {TokenID: "x", Name: "x", Role: domain.RoleCustomer},
		"agent with a requester":   {TokenID: "x", Name: "x", Role: domain.RoleAgent, Requester: "a@example.com"},
		"no name":                  {TokenID: "x", Role: domain.RoleAgent},
	} {
		if _, err := domain.DecideIssueToken(&s, tok); !errors.Is(err, domain.ErrValidation) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLastAdminTokenCannotBeRevoked(t *testing.T) {
	var s domain.TokensState
	for _, id := range []string{"a1", "a2"} {
		got, err := domain.DecideIssueToken(&s, domain.TokenIssued{TokenID: id, Name: id, Role: domain.RoleAdmin, SecretHash: domain.HashSecret(id)})
		if err != nil {
			t.Fatal(err)
		}
		domain.EvolveTokens(&s, domain.Event{Sequence: s.Version + 1, Payload: got[0]})
	}
	got, err := domain.DecideRevokeToken(&s, "a1")
	if err != nil {
		t.Fatalf("revoking one of two admin tokens: %v", err)
	}
	domain.EvolveTokens(&s, domain.Event{Sequence: s.Version + 1, Payload: got[0]})
	if _, err := domain.DecideRevokeToken(&s, "a2"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("revoking the last admin token: %v", err)
	}
}
