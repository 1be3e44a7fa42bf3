package bench

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ticketcore/ticketcore/domain"
)

// TestWorkloadHoldsNoPointers keeps the workload out of the collector's way: a step,
// and the workload's text, must be memory it never scans (see Step).
func TestWorkloadHoldsNoPointers(t *testing.T) {
	var scanned func(reflect.Type) bool
	scanned = func(typ reflect.Type) bool {
		switch typ.Kind() {
		case reflect.Pointer, reflect.UnsafePointer, reflect.String, reflect.Slice, reflect.Map,
			reflect.Interface, reflect.Func, reflect.Chan:
			return true
		case reflect.Array:
			return scanned(typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				if scanned(typ.Field(i).Type) {
					return true
				}
			}
		}
		return false
	}
	if typ := reflect.TypeFor[Step](); scanned(typ) {
		t.Errorf("%v holds pointers", typ)
	}
	if typ := reflect.TypeOf(Workload{}.text); scanned(typ.Elem()) {
		t.Errorf("the workload's text is %v, whose elements hold pointers", typ)
	}
}

// TestWorkloadLifecycles checks what the bench's figures assume of the workload: every
// ticket lives through 8 commands, created first and closed last, its steps in time
// order, and a seed always gives the same workload.
func TestWorkloadLifecycles(t *testing.T) {
	const tickets = 500
	w := Generate(tickets, 7)
	if len(w.Steps) != 8*tickets {
		t.Fatalf("%d steps for %d tickets, want 8 each", len(w.Steps), tickets)
	}
	if !slices.IsSortedFunc(w.Steps, func(a, b Step) int { return int(a.At - b.At) }) {
		t.Error("steps are not in time order")
	}
	lives := make([][]Step, tickets)
	for _, s := range w.Steps {
		lives[s.Ticket] = append(lives[s.Ticket], s)
	}
	for i, life := range lives {
		if len(life) != 8 || life[0].Kind != StepCreate || life[7].Kind != StepClose {
			t.Fatalf("ticket %d lives through %v", i, life)
		}
		create, _ := w.Command(life[0])
		if create == nil || create.Subject == "" || create.Description == "" || !domain.ValidEmail(create.RaisedBy) {
			t.Fatalf("ticket %d is created with %+v", i, create)
		}
		for _, s := range life[1:] {
			if create, cmd := w.Command(s); create != nil || cmd == nil {
				t.Fatalf("ticket %d: step %v sends %v, %v", i, s.Kind, create, cmd)
			}
		}
	}
	again := Generate(tickets, 7)
	if !slices.Equal(w.Steps, again.Steps) || string(w.text) != string(again.text) {
		t.Error("the same seed gave another workload")
	}
}
