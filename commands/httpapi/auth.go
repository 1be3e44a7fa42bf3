package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/ticketcore/ticketcore/domain"
)

// Authenticator resolves API tokens (the handler's token catalogue).
type Authenticator interface {
	Authenticate(token string) (domain.Principal, bool)
}

type principalKey struct{}

// principalFrom is the authenticated caller of a request, if any.
func principalFrom(ctx context.Context) (domain.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(domain.Principal)
	return p, ok
}

// requiredPermission classifies a request: which permission the endpoint needs, or ""
// for the public health check. Classifying by method and path keeps the whole access
// matrix in one place (docs/api.md shows it).
func requiredPermission(r *http.Request) domain.Permission {
	path := r.URL.Path
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "/healthz":
		return ""
	case strings.HasPrefix(path, "/v1/portal/"):
		return domain.PermPortal
	case strings.HasPrefix(path, "/v1/tokens"):
		return domain.PermTokens
	case strings.HasPrefix(path, "/v1/tickets"):
		if read && (strings.HasSuffix(path, "/events") || strings.HasSuffix(path, "/history")) {
			return domain.PermHistory
		}
		if read {
			return domain.PermRead
		}
		return domain.PermTicketCommand
	case path == "/v1/what-if" || strings.HasPrefix(path, "/v1/reports"):
		return domain.PermRead // what-if is a POST, but it only reads
	case read:
		return domain.PermRead // reference data, settings
	}
	return domain.PermReference // changes to types, priorities, SLAs, holiday lists, settings
}

// authenticate requires a valid bearer token whose role allows the endpoint: 401
// without a valid token, 403 for a role without the permission; the request goes no
// further, so nothing changes. The principal travels in the request's context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		perm := requiredPermission(r)
		if perm == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, valid := s.Auth.Authenticate(strings.TrimSpace(token))
		if !ok || !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ticketcore"`)
			writeProblem(w, r, Problem{Type: ProblemUnauthenticated, Title: "Unauthenticated", Status: http.StatusUnauthorized,
				Detail: "send a valid API token: Authorization: Bearer tkc_..."})
			return
		}
		if !p.Role.Allows(perm) {
			writeProblem(w, r, Problem{Type: ProblemForbidden, Title: "Forbidden", Status: http.StatusForbidden,
				Detail: "the role " + string(p.Role) + " does not have the permission " + string(perm)})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
