package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/ticketcore/ticketcore/domain"
)

// IssuedToken is a new token: Token is the secret, shown once and never stored.
type IssuedToken struct {
	Token string `json:"token"`
	domain.Principal
}

// IssueToken creates an API token for a role (customer tokens name their requester).
func (h *Handler) IssueToken(ctx context.Context, name string, role domain.Role, requester string, meta Meta) (IssuedToken, error) {
	meta = h.withDefaults(meta)
	id, secret := make([]byte, 8), make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return IssuedToken{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return IssuedToken{}, err
	}
	issued := domain.TokenIssued{TokenID: hex.EncodeToString(id), Name: name, Role: role,
		SecretHash: domain.HashSecret(hex.EncodeToString(secret)), Requester: requester}
	events, err := h.ref.decideAndAppend(ctx, h.store, domain.APITokensStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.tokens
		h.ref.mu.RUnlock()
		return domain.DecideIssueToken(&s, issued)
	})
	if err != nil {
		return IssuedToken{}, err
	}
	if got := events[0].Payload.(domain.TokenIssued); got.TokenID != issued.TokenID {
		// A retried command: its token was issued the first time and its secret is gone.
		return IssuedToken{}, fmt.Errorf("token %s was already issued by this command and cannot be shown again: %w", got.TokenID, domain.ErrConflict)
	}
	return IssuedToken{
		Token:     domain.TokenPrefix + issued.TokenID + "_" + hex.EncodeToString(secret),
		Principal: domain.Principal{TokenID: issued.TokenID, Name: name, Role: role, Requester: requester},
	}, nil
}

// RevokeToken makes a token unusable at once.
func (h *Handler) RevokeToken(ctx context.Context, id string, meta Meta) error {
	meta = h.withDefaults(meta)
	_, err := h.ref.decideAndAppend(ctx, h.store, domain.APITokensStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.tokens
		h.ref.mu.RUnlock()
		return domain.DecideRevokeToken(&s, id)
	})
	return err
}
