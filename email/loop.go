package email

import (
	"strings"

	"github.com/google/uuid"
)

// Loop protection (RFC 3834): a message that is itself automatic never gets an
// automatic reply, so two helpdesks (or a helpdesk and a vacation responder) cannot
// answer each other forever. The rate limit per sender (Ingester.AutoReplyLimit) is
// the last line for automatic mail that does not say so.

// robotLocalParts are senders that never read replies.
var robotLocalParts = []string{"mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "bounce", "bounces"}

// automaticReason says why a message must not be answered automatically, or "".
// ours reports whether an address is one of our support addresses; ownDomain whether
// a domain is one of ours.
func automaticReason(msg *Inbound, env Envelope, ours func(string) bool, ownDomain func(string) bool) string {
	h := msg.Header
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		return "Auto-Submitted: " + v
	}
	switch p := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); p {
	case "bulk", "list", "junk", "auto_reply":
		return "Precedence: " + p
	}
	for _, k := range []string{"X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond", "X-Autoresponder"} {
		if h.Has(k) {
			return k + " present"
		}
	}
	if env.NullSender {
		return "empty return path"
	}
	if msg.From != nil {
		addr := msg.From.Address
		if ours(addr) {
			return "sent from one of our own addresses"
		}
		local, _, _ := strings.Cut(addr, "@")
		for _, robot := range robotLocalParts {
			if local == robot || strings.HasPrefix(local, robot+"+") {
				return "sender " + addr + " is a robot address"
			}
		}
	}
	// Our own Message-IDs are <uuid@one of our domains>: such a message is ours.
	if local, domain, ok := strings.Cut(msg.MessageID, "@"); ok && uuid.Validate(local) == nil && ownDomain(domain) {
		return "Message-ID of our own domain"
	}
	return ""
}
