package scenario_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/scenario"
)

// acceptanceFiles are every scenario in the shared acceptance folder: a file added
// there is tested without any change here.
func acceptanceFiles(t *testing.T) []string {
	files, err := filepath.Glob("../../shared/acceptance/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no acceptance scenarios found in ../../shared/acceptance: %v", err)
	}
	return files
}

func runAll(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	for _, path := range acceptanceFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := scenario.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			mismatches, err := scenario.Run(ctx, f, newStore(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range mismatches {
				t.Error(m)
			}
		})
	}
}

// The acceptance scenarios through the real handlers, the embedded JetStream store and
// the projections.
func TestAcceptanceJetStream(t *testing.T) {
	runAll(t, func(t *testing.T) eventstore.Store {
		s, err := jetstream.Open(context.Background(), jetstream.Config{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// The same on the memory adapter: both adapters must give the same numbers.
func TestAcceptanceMemory(t *testing.T) {
	runAll(t, func(*testing.T) eventstore.Store { return memstore.New() })
}
