package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
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
	ProblemMalformed        = commands.ProblemMalformed
	ProblemValidation       = commands.ProblemValidation
	ProblemNotFound         = commands.ProblemNotFound
	ProblemTransition       = commands.ProblemTransition
	ProblemConflict         = commands.ProblemConflict
	ProblemVersionMismatch  = commands.ProblemVersionMismatch
	ProblemTooLarge         = commands.ProblemTooLarge
	ProblemMediaType        = "/problems/unsupported-media-type"
	ProblemMethodNotAllowed = "/problems/method-not-allowed"
	ProblemForbidden        = commands.ProblemForbidden
	ProblemUnauthenticated  = commands.ProblemUnauthenticated
	ProblemUnavailable      = commands.ProblemUnavailable
	ProblemInternal         = commands.ProblemInternal
)

// requestError is an error of the request itself, found before any command runs.
type requestError struct {
	status int
	typ    string
	detail string
}

func (e *requestError) Error() string { return e.detail }

// problemFor maps an error to its problem, once, at the edge: errors of the request
// itself here, the handlers' errors by commands.Classify (shared with the NATS transport).
func problemFor(err error) Problem {
	var re *requestError
	if errors.As(err, &re) {
		return Problem{Type: re.typ, Title: http.StatusText(re.status), Status: re.status, Detail: re.detail}
	}
	kind, status := commands.Classify(err)
	p := Problem{Type: commands.ProblemType(kind), Title: commands.ProblemTitle(kind), Status: status, Detail: err.Error()}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		p.Errors = ve.Fields
	}
	if kind == commands.KindInternal {
		p.Detail = "an internal error occurred; it has been logged"
	}
	return p
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
