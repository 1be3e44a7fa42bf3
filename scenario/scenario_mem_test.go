package scenario

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ticketcore/ticketcore/eventstore/memstore"
)

func TestAcceptanceMemory(t *testing.T) {
	files, _ := filepath.Glob("../../shared/acceptance/*.json")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := Run(context.Background(), f, memstore.New())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				t.Error(m)
			}
		})
	}
}
