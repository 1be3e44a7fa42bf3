package domain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Access control: every caller authenticates with an API token (HTTP) or NATS
// credentials and acts in one role. Tokens are reference data like the rest: issuing
// and revoking them are events (audited, replayable), and only a token's SHA-256 is
// ever stored — tokens are 256-bit random secrets, so a fast hash is enough.

// Role is what a caller may do.
type Role string

const (
	RoleAdmin    Role = "admin"    // everything, including reference data, settings and tokens
	RoleService  Role = "service"  // another backend: ticket commands and reads
	RoleAgent    Role = "agent"    // a support agent: ticket commands and reads
	RoleAnalyst  Role = "analyst"  // reads projections and reports
	RoleAuditor  Role = "auditor"  // reads projections, raw history, verification
	RoleCustomer Role = "customer" // a requester on the portal: their own tickets only
)

// Roles lists the roles.
var Roles = []Role{RoleAdmin, RoleService, RoleAgent, RoleAnalyst, RoleAuditor, RoleCustomer}

// Permission is a kind of call.
type Permission string

const (
	PermTicketCommand Permission = "ticket:command"  // send ticket commands
	PermRead          Permission = "read"            // ticket views, lists, reports, what-if
	PermHistory       Permission = "history"         // raw events, history timelines, verification
	PermReference     Permission = "reference:write" // types, priorities, SLAs, holiday lists, settings
	PermTokens        Permission = "tokens"          // issue and revoke API tokens
	PermPortal        Permission = "portal"          // the requester's own tickets
)

var rolePermissions = map[Role][]Permission{
	RoleAdmin:    {PermTicketCommand, PermRead, PermHistory, PermReference, PermTokens},
	RoleService:  {PermTicketCommand, PermRead},
	RoleAgent:    {PermTicketCommand, PermRead},
	RoleAnalyst:  {PermRead},
	RoleAuditor:  {PermRead, PermHistory},
	RoleCustomer: {PermPortal},
}

// Allows reports whether role r has permission p.
func (r Role) Allows(p Permission) bool { return slices.Contains(rolePermissions[r], p) }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { _, ok := rolePermissions[r]; return ok }

// APITokensStream is the stream of the token catalogue.
const APITokensStream = "catalogue-api-tokens"

// TokenIssued records a new token. Requester is set for customer tokens: the email
// address whose tickets the token may see.
type TokenIssued struct {
	TokenID    string `json:"token_id"`
	Name       string `json:"name"`
	Role       Role   `json:"role"`
	SecretHash string `json:"secret_sha256"`
	Requester  string `json:"requester,omitempty"`
}

// TokenRevoked records that a token no longer works.
type TokenRevoked struct {
	TokenID string `json:"token_id"`
}

func (TokenIssued) EventType() string  { return "api_token.issued" }
func (TokenRevoked) EventType() string { return "api_token.revoked" }

// Principal is an authenticated caller.
type Principal struct {
	TokenID   string `json:"token_id"`
	Name      string `json:"name"`
	Role      Role   `json:"role"`
	Requester string `json:"requester,omitempty"`
}

// Actor is how events name the principal.
func (p Principal) Actor() string { return string(p.Role) + ":" + p.Name }

// TokensState is the token catalogue.
type TokensState struct {
	Version  uint64
	LastHash string
	CommandLog
	Tokens map[string]TokenIssued // by token id; revoked tokens are removed
}

// TokenPrefix starts every token: "tkc_<token id>_<secret>".
const TokenPrefix = "tkc_"

// HashSecret is the stored form of a token secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Authenticate resolves a presented token, in constant time for the secret.
func (s *TokensState) Authenticate(token string) (Principal, bool) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return Principal{}, false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok {
		return Principal{}, false
	}
	t, ok := s.Tokens[id]
	if !ok {
		return Principal{}, false
	}
	if subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(t.SecretHash)) != 1 {
		return Principal{}, false
	}
	return Principal{TokenID: t.TokenID, Name: t.Name, Role: t.Role, Requester: t.Requester}, true
}

// DecideIssueToken validates a new token (its id and secret hash made by the handler).
func DecideIssueToken(s *TokensState, t TokenIssued) ([]Payload, error) {
	var v ValidationError
	if err := requireName("name", t.Name); err != nil {
		v.Add("name", "is required and at most %d characters", MaxNameLen)
	}
	if !t.Role.Valid() {
		v.Add("role", "must be one of admin, service, agent, analyst, auditor, customer")
	}
	if t.Role == RoleCustomer && !ValidEmail(t.Requester) {
		v.Add("requester", "a customer token needs the requester's email address")
	}
	if t.Role != RoleCustomer && t.Requester != "" {
		v.Add("requester", "only customer tokens have a requester")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, ok := s.Tokens[t.TokenID]; ok {
		return nil, fmt.Errorf("token %s: %w", t.TokenID, ErrConflict)
	}
	return []Payload{t}, nil
}

// DecideRevokeToken revokes a token, but never the last admin token: nobody could
// issue tokens any more.
func DecideRevokeToken(s *TokensState, id string) ([]Payload, error) {
	t, ok := s.Tokens[id]
	if !ok {
		return nil, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if t.Role == RoleAdmin {
		admins := 0
		for _, other := range s.Tokens {
			if other.Role == RoleAdmin {
				admins++
			}
		}
		if admins == 1 {
			return nil, fmt.Errorf("token %s is the last admin token; issue another admin token first: %w", id, ErrConflict)
		}
	}
	return []Payload{TokenRevoked{TokenID: id}}, nil
}

// EvolveTokens applies a token event.
func EvolveTokens(s *TokensState, e Event) {
	s.Version, s.LastHash = e.Sequence, e.Hash
	s.record(e)
	tokens := cloneMap(s.Tokens)
	switch p := e.Payload.(type) {
	case TokenIssued:
		tokens[p.TokenID] = p
	case TokenRevoked:
		delete(tokens, p.TokenID)
	}
	s.Tokens = tokens
}
