package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/commands/natsapi"
)

func TestNATSFlagsAreChecked(t *testing.T) {
	for name, args := range map[string][]string{
		"auth with an external NATS":    {"--nats-url", "nats://127.0.0.1:4222", "--nats-auth", "users.json"},
		"credentials for embedded":      {"--nats-creds", "x.creds"},
		"user and password, embedded":   {"--nats-user", "a", "--nats-password", "b"},
		"missing users file":            {"--nats-auth", filepath.Join(t.TempDir(), "none.json")},
		"listen with an external NATS":  {"--nats-url", "nats://127.0.0.1:4222", "--nats-listen", "127.0.0.1:4222"},
		"listen without a port":         {"--nats-listen", "127.0.0.1"},
		"listen on a port out of range": {"--nats-listen", "127.0.0.1:70000"},
	} {
		cfg, err := parseConfig(append(args, "--data", t.TempDir(), "--http", "127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = run(ctx, cfg, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// lockedBuffer collects the service's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) natsURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		var rec struct {
			URL string `json:"nats_url"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.URL != "" {
			return rec.URL
		}
	}
	return ""
}

// ticketd with --nats-auth: anonymous clients are refused, a user allowed to publish on
// tickets.cmd.> sends commands, and ticketd's own connection works.
func TestTicketdWithNATSAuth(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	if err := os.WriteFile(users, []byte(`{"users": [{"user": "crm", "password": "s3cret",
		"publish": ["tickets.cmd.>"], "subscribe": ["_INBOX.>"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TICKETD_NATS_AUTH", users)
	cfg, err := parseConfig([]string{"--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ticketd: %v", err)
		}
	}()
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if url = logs.natsURL(); url == "" && time.Now().After(deadline) {
			t.Fatal("ticketd did not log its NATS URL")
		}
	}
	if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.UserInfo("crm", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Besides the NATS user, a command carries an API token with a role, as over HTTP.
	var token []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if token, err = os.ReadFile(filepath.Join(dir, "data", "admin.token")); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	send := func(commandID string, withToken bool) *nats.Msg {
		msg := nats.NewMsg(natsapi.RequestSubjectPrefix + ".create")
		msg.Header.Set(natsapi.HeaderCommandID, commandID)
		if withToken {
			msg.Header.Set(natsapi.HeaderAuthorization, "Bearer "+strings.TrimSpace(string(token)))
		}
		msg.Data = []byte(`{"subject": "Over NATS", "raised_by": "ann@example.com"}`)
		var reply *nats.Msg
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			// The command server starts right after the store; retry while it subscribes.
			if reply, err = nc.RequestMsg(msg, 2*time.Second); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	if reply := send("crm-0", false); reply.Header.Get(natsapi.HeaderError) != "unauthenticated" {
		t.Fatalf("without a token: %v %s", reply.Header, reply.Data)
	}
	if reply := send("crm-1", true); reply.Header.Get(natsapi.HeaderStatus) != natsapi.StatusOK {
		t.Fatalf("%v %s", reply.Header, reply.Data)
	}
}

// TestNATSListen: with --nats-listen the embedded server listens where it is told, and
// tools connect there.
func TestNATSListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a free port, for the server to take
	p := startInProcess(t, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0", "--nats-listen", addr)
	if got := p.logs.natsURL(); got != "nats://"+addr {
		t.Fatalf("embedded NATS at %q, want nats://%s", got, addr)
	}
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}
