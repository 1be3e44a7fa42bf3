package commands

import (
	"errors"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Error kinds: the stable name of each kind of refusal, the same on every transport
// (the suffix of the HTTP problem type, and the NATS Ticket-Error header).
const (
	KindMalformed         = "malformed" // the request itself is wrong (transports only)
	KindTooLarge          = "payload-too-large"
	KindValidation        = "validation"
	KindNotFound          = "not-found"
	KindInvalidTransition = "invalid-transition"
	KindConflict          = "conflict"
	KindVersionMismatch   = "version-mismatch"
	KindForbidden         = "forbidden"
	KindUnauthenticated   = "unauthenticated"
	KindUnavailable       = "unavailable"
	KindInternal          = "internal"
)

// Problem types (RFC 9457 "type") of the kinds, shared by the HTTP and NATS transports.
const (
	ProblemMalformed       = "/problems/malformed-request"
	ProblemTooLarge        = "/problems/payload-too-large"
	ProblemValidation      = "/problems/validation"
	ProblemNotFound        = "/problems/not-found"
	ProblemTransition      = "/problems/invalid-transition"
	ProblemConflict        = "/problems/conflict"
	ProblemVersionMismatch = "/problems/version-mismatch"
	ProblemForbidden       = "/problems/forbidden"
	ProblemUnauthenticated = "/problems/unauthenticated"
	ProblemUnavailable     = "/problems/unavailable"
	ProblemInternal        = "/problems/internal"
)

var problems = map[string]struct{ typ, title string }{
	KindMalformed:         {ProblemMalformed, "Bad Request"},
	KindTooLarge:          {ProblemTooLarge, "Request Entity Too Large"},
	KindValidation:        {ProblemValidation, "Validation failed"},
	KindNotFound:          {ProblemNotFound, "Not found"},
	KindInvalidTransition: {ProblemTransition, "Invalid transition"},
	KindConflict:          {ProblemConflict, "Conflict"},
	KindVersionMismatch:   {ProblemVersionMismatch, "Precondition failed"},
	KindForbidden:         {ProblemForbidden, "Forbidden"},
	KindUnauthenticated:   {ProblemUnauthenticated, "Unauthenticated"},
	KindUnavailable:       {ProblemUnavailable, "Service unavailable"},
	KindInternal:          {ProblemInternal, "Internal error"},
}

// Classify maps an error of the handlers to its kind and the HTTP status that goes
// with it, once for every transport. Errors that wrap none of the domain's sentinels
// (nor eventstore.ErrUnavailable) are internal.
func Classify(err error) (kind string, status int) {
	var vm *VersionMismatchError
	switch {
	case errors.Is(err, domain.ErrValidation):
		return KindValidation, 422
	case errors.As(err, &vm):
		return KindVersionMismatch, 412
	case errors.Is(err, domain.ErrNotFound):
		return KindNotFound, 404
	case errors.Is(err, domain.ErrInvalidTransition):
		return KindInvalidTransition, 409
	case errors.Is(err, domain.ErrUnauthenticated):
		return KindUnauthenticated, 401
	case errors.Is(err, domain.ErrForbidden):
		return KindForbidden, 403
	case errors.Is(err, domain.ErrConflict):
		return KindConflict, 409
	case errors.Is(err, eventstore.ErrUnavailable):
		return KindUnavailable, 503
	}
	return KindInternal, 500
}

// ProblemType is the problem type of a kind ("/problems/<kind>"; malformed is
// "/problems/malformed-request").
func ProblemType(kind string) string {
	if p, ok := problems[kind]; ok {
		return p.typ
	}
	return "/problems/" + kind
}

// ProblemTitle is the short title of a kind's problem documents.
func ProblemTitle(kind string) string {
	if p, ok := problems[kind]; ok {
		return p.title
	}
	return kind
}

// Transient reports whether a failed command may succeed if sent again unchanged: the
// store was unavailable, a concurrency conflict outlasted the handler's own retries, or
// an internal error. Refusals (validation, not found, invalid transition, a conflict
// with existing data, version mismatch, forbidden) are final.
func Transient(err error) bool {
	if errors.Is(err, eventstore.ErrConflict) {
		return true
	}
	kind, _ := Classify(err)
	return kind == KindUnavailable || kind == KindInternal
}
