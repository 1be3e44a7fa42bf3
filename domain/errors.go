package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the domain. Every error a decider or a validator returns wraps
// exactly one of them, so each transport maps them once (errors.Is) to its own codes.
var (
	ErrValidation        = errors.New("validation failed")
	ErrInvalidTransition = errors.New("invalid transition")
	ErrNotFound          = errors.New("not found")
	ErrConflict          = errors.New("conflict")
	ErrForbidden         = errors.New("forbidden")
	ErrUnauthenticated   = errors.New("unauthenticated")
)

// FieldError is one problem with one input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in an input; it wraps ErrValidation.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrValidation }

// Add records a problem; the zero value is ready to use.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when no problem was recorded, else the error itself.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Invalid is a one-field validation error.
func Invalid(field, format string, args ...any) error {
	var e ValidationError
	e.Add(field, format, args...)
	return &e
}

// TransitionError says which action was refused in which status; it wraps
// ErrInvalidTransition.
type TransitionError struct {
	Action string
	From   Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("invalid transition: cannot %s a ticket that is %s", e.Action, e.From)
}

func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }
