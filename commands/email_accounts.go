package commands

import (
	"context"
	"slices"
	"strings"

	"github.com/ticketcore/ticketcore/domain"
)

// Email accounts: the support addresses of the email channel, reference data in the
// catalogue stream catalogue-email-accounts (docs/email.md).

// SaveEmailAccount creates an email account or replaces its settings.
func (h *Handler) SaveEmailAccount(ctx context.Context, a domain.EmailAccount, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.EmailAccountsStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.email
		h.ref.mu.RUnlock()
		return domain.DecideSaveEmailAccount(&s, a, h.ref.Reference())
	})
}

// RemoveEmailAccount removes an email account: mail to it is refused from then on.
func (h *Handler) RemoveEmailAccount(ctx context.Context, address string, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.EmailAccountsStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.email
		h.ref.mu.RUnlock()
		return domain.DecideRemoveEmailAccount(&s, address)
	})
}

// EmailAccount finds an email account by address (case-insensitively).
func (c *Catalogues) EmailAccount(address string) (domain.EmailAccount, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.email.Lookup(address)
}

// EmailAccounts lists the email accounts by address.
func (c *Catalogues) EmailAccounts() []domain.EmailAccount {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]domain.EmailAccount, 0, len(c.email.Accounts))
	for _, a := range c.email.Accounts {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b domain.EmailAccount) int { return strings.Compare(a.Address, b.Address) })
	return out
}
