package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Problem is an RFC 9457 problem document. Type is stable per kind of error, so
// clients switch on it rather than on the text.
type Problem struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Instance string              `json:"instance,omitempty"`
	Errors   []domain.FieldError `json:"errors,omitempty"`
}

// Problem types.
const (
	ProblemMalformed        = "/problems/malformed-request"
	ProblemValidation       = "/problems/validation"
	ProblemNotFound         = "/problems/not-found"
	ProblemTransition       = "/problems/invalid-transition"
	ProblemConflict         = "/problems/conflict"
	ProblemVersionMismatch  = "/problems/version-mismatch"
	ProblemTooLarge         = "/problems/payload-too-large"
	ProblemMediaType        = "/problems/unsupported-media-type"
	ProblemMethodNotAllowed = "/problems/method-not-allowed"
	ProblemForbidden        = "/problems/forbidden"
	ProblemUnavailable      = "/problems/unavailable"
	ProblemInternal         = "/problems/internal"
)

// requestError is an error of the request itself, found before any command runs.
type requestError struct {
	status int
	typ    string
	detail string
}

func (e *requestError) Error() string { return e.detail }

// problemFor maps an error to its problem, once, at the edge.
func problemFor(err error) Problem {
	var re *requestError
	var ve *domain.ValidationError
	var vm *commands.VersionMismatchError
	switch {
	case errors.As(err, &re):
		return Problem{Type: re.typ, Title: http.StatusText(re.status), Status: re.status, Detail: re.detail}
	case errors.As(err, &ve):
		return Problem{Type: ProblemValidation, Title: "Validation failed", Status: http.StatusUnprocessableEntity, Detail: err.Error(), Errors: ve.Fields}
	case errors.Is(err, domain.ErrValidation):
		return Problem{Type: ProblemValidation, Title: "Validation failed", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
	case errors.As(err, &vm):
		return Problem{Type: ProblemVersionMismatch, Title: "Precondition failed", Status: http.StatusPreconditionFailed, Detail: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return Problem{Type: ProblemNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, domain.ErrInvalidTransition):
		return Problem{Type: ProblemTransition, Title: "Invalid transition", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, domain.ErrForbidden):
		return Problem{Type: ProblemForbidden, Title: "Forbidden", Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, domain.ErrConflict):
		return Problem{Type: ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, eventstore.ErrUnavailable):
		return Problem{Type: ProblemUnavailable, Title: "Service unavailable", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	}
	return Problem{Type: ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError, Detail: "an internal error occurred; it has been logged"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
