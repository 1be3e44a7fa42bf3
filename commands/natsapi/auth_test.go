package natsapi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/ticketcore/ticketcore/commands/natsapi"
	natsstore "github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// With --nats-auth the embedded server refuses anonymous clients and enforces each
// user's subjects; ticketd's own in-process connection still works.
func TestNATSAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	path := filepath.Join(t.TempDir(), "users.json")
	users := `{"users": [
	  {"user": "crm", "password": "` + string(hash) + `", "publish": ["tickets.cmd.>"], "subscribe": ["_INBOX.>"]},
	  {"nkey": "` + pub + `", "publish": {"allow": ["tickets.cmdq.>"], "deny": ["tickets.cmdq.dead"]},
	   "subscribe": ["_INBOX.>", "tickets.cmdq.results.>"]}
	]}`
	if err := os.WriteFile(path, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := natsapi.LoadNATSUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	password := natsapi.RandomPassword()
	s := newStack(t, natsstore.Config{ConfigureServer: u.ConfigureServer(password),
		Options: []nats.Option{nats.UserInfo(natsapi.InternalUser, password)}})
	s.serve(t, natsapi.Config{})

	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo("crm", "guess")},
		"bcrypt hash":    {nats.UserInfo("crm", string(hash))},
		"internal user":  {nats.UserInfo(natsapi.InternalUser, "guess")},
	} {
		nc, err := nats.Connect(s.store.ClientURL(), append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// crm may send request/reply commands, and nothing else.
	violations := make(chan error, 10)
	crm := s.connect(t, nats.UserInfo("crm", "s3cret"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		violations <- err
	}))
	a := accepted(t, send(t, crm, "create", map[string]string{"Command-Id": "crm-1"}, `{"subject": "Via NATS", "raised_by": "ann@example.com"}`))
	if a.Version != 1 {
		t.Fatalf("%+v", a)
	}
	if err := crm.Publish(natsapi.DurableSubjectPrefix+".create", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	_ = crm.Flush()
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("publish to the durable subjects: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("crm published a durable command")
	}

	// The nkey user sends durable commands and reads their outcomes.
	svc := s.connect(t, nats.Nkey(pub, kp.Sign), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	results, err := svc.SubscribeSync(natsapi.ResultSubjectPrefix + ".nk-1")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(svc)
	if err != nil {
		t.Fatal(err)
	}
	publishDurable(t, js, "comment", map[string]string{"Nats-Msg-Id": "nk-1", "Ticket-Id": a.ID}, `{"body": "queued by a service"}`)
	if r := accepted(t, nextResult(t, results)); r.ID != a.ID || r.Version != 2 {
		t.Fatalf("%+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	msg := nats.NewMsg(natsapi.DeadLetterSubject)
	if _, err := js.PublishMsg(ctx, msg); err == nil {
		t.Fatal("the nkey user published a dead letter")
	}
}

func TestLoadNATSUsersRefusesBadFiles(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	for name, body := range map[string]string{
		"no user":            `{"users": []}`,
		"unknown field":      `{"users": [{"user": "a", "password": "p", "admin": true}]}`,
		"no password":        `{"users": [{"user": "a"}]}`,
		"user and nkey":      `{"users": [{"user": "a", "password": "p", "nkey": "` + pub + `"}]}`,
		"not a user nkey":    `{"users": [{"nkey": "SUAM..."}]}`,
		"twice":              `{"users": [{"user": "a", "password": "p"}, {"user": "a", "password": "q"}]}`,
		"ticketd's own name": `{"users": [{"user": "ticketd", "password": "p"}]}`,
		"bad rule":           `{"users": [{"user": "a", "password": "p", "publish": {"allowed": ["x"]}}]}`,
	} {
		path := filepath.Join(t.TempDir(), "users.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := natsapi.LoadNATSUsers(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
