package memstore_test

import (
	"testing"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return memstore.New()
	})
}
