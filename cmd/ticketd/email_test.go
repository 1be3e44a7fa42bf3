package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// captureRelay is an SMTP relay on loopback that keeps what it is given.
type captureRelay struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *captureRelay) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &captureSession{r: r}, nil
}

type captureSession struct{ r *captureRelay }

func (s *captureSession) Reset()                               {}
func (s *captureSession) Logout() error                        { return nil }
func (s *captureSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *captureSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *captureSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, b)
	s.r.mu.Unlock()
	return nil
}

func (r *captureRelay) messages() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

// logAddr finds the addr logged with a message.
func (l *lockedBuffer) logAddr(msg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg && rec.Addr != "" {
			return rec.Addr
		}
	}
	return ""
}

// TestTicketdEmail: ticketd with --smtp and --smtp-relay: an email account created
// over the API, a real email to the SMTP listener opens a ticket, and the
// acknowledgement with the ticket number reaches the relay.
func TestTicketdEmail(t *testing.T) {
	relay := &captureRelay{}
	rs := smtp.NewServer(relay)
	rs.Domain = "relay.test"
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go rs.Serve(rln)
	defer rs.Close()

	dir := t.TempDir()
	cfg, err := parseConfig([]string{"--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0",
		"--smtp", "127.0.0.1:0", "--smtp-relay", rln.Addr().String(), "--smtp-relay-security", "none", "--smtp-hostname", "ticketd.test"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil))) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ticketd: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("ticketd did not stop")
		}
	}()
	var httpAddr, smtpAddr string
	for deadline := time.Now().Add(20 * time.Second); httpAddr == "" || smtpAddr == ""; time.Sleep(20 * time.Millisecond) {
		httpAddr, smtpAddr = logs.logAddr("HTTP API listening"), logs.logAddr("SMTP listening for inbound mail")
		if time.Now().After(deadline) {
			t.Fatalf("ticketd did not log its addresses (http %q, smtp %q)", httpAddr, smtpAddr)
		}
	}
	token, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	api := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, "http://"+httpAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	if code, body := api("PUT", "/v1/email-accounts/support@example.com", `{"name": "Example Support", "default_priority": "High"}`); code != 200 {
		t.Fatalf("create the email account: %d %s", code, body)
	}
	// Unknown recipients are refused at RCPT time.
	if err := netsmtp.SendMail(smtpAddr, nil, "alice@customer.example", []string{"nobody@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil ||
		!strings.Contains(err.Error(), "550") {
		t.Fatalf("unknown recipient: %v", err)
	}
	msg := "From: Alice <alice@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <ticketd-1@customer.example>\r\n\r\nSmoke everywhere.\r\n"
	if err := netsmtp.SendMail(smtpAddr, nil, "alice@customer.example", []string{"support@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	var ack []byte
	for deadline := time.Now().Add(10 * time.Second); ack == nil; time.Sleep(20 * time.Millisecond) {
		if m := relay.messages(); len(m) > 0 {
			ack = m[0]
		} else if time.Now().After(deadline) {
			t.Fatal("no acknowledgement reached the relay")
		}
	}
	number := regexp.MustCompile(`TKT-\d{4}-\d{6}`).Find(ack)
	if number == nil || !bytes.Contains(ack, []byte("Auto-Submitted: auto-replied")) || !bytes.Contains(ack, []byte("In-Reply-To: <ticketd-1@customer.example>")) {
		t.Fatalf("acknowledgement:\n%s", ack)
	}
	code, body := api("GET", "/v1/tickets/"+string(number), "")
	if code != 200 {
		t.Fatalf("GET ticket: %d %s", code, body)
	}
	var view struct {
		RaisedBy string `json:"raised_by"`
		Channel  string `json:"channel"`
		Priority string `json:"priority"`
	}
	if err := json.Unmarshal(body, &view); err != nil || view.RaisedBy != "alice@customer.example" || view.Channel != "email" || view.Priority != "High" {
		t.Fatalf("ticket %s: %+v %v", body, view, err)
	}
	if code, body := api("GET", "/v1/email-accounts", ""); code != 200 || !bytes.Contains(body, []byte(`"address": "support@example.com"`)) {
		t.Fatalf("list accounts: %d %s", code, fmt.Sprint(string(body)))
	}
}
