package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
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

	"github.com/ticketcore/ticketcore/email/emailtest"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
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

// startRelay serves a capture relay on loopback until the test ends.
func startRelay(t *testing.T) (*captureRelay, string) {
	t.Helper()
	relay := &captureRelay{}
	rs := smtp.NewServer(relay)
	rs.Domain = "relay.test"
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go rs.Serve(rln)
	t.Cleanup(func() { rs.Close() })
	return relay, rln.Addr().String()
}

// inProcess is ticketd run in the test's process, with its logs (JSON) at hand.
type inProcess struct {
	logs           *lockedBuffer
	httpAddr, smtp string
	cancel         context.CancelFunc
	done           chan error
	stopped        bool
}

// startInProcess runs ticketd with args (an --http and --smtp on 127.0.0.1:0 among
// them) until stop or the end of the test, once it has logged both addresses.
func startInProcess(t *testing.T, args ...string) *inProcess {
	t.Helper()
	cfg, err := parseConfig(args)
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{logs: &lockedBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(p.logs, nil))) }()
	t.Cleanup(func() { p.stop(t) })
	for deadline := time.Now().Add(20 * time.Second); p.httpAddr == "" || p.smtp == ""; time.Sleep(20 * time.Millisecond) {
		p.httpAddr, p.smtp = p.logs.logAddr("HTTP API listening"), p.logs.logAddr("SMTP listening for inbound mail")
		if time.Now().After(deadline) {
			t.Fatalf("ticketd did not log its addresses (http %q, smtp %q)", p.httpAddr, p.smtp)
		}
	}
	return p
}

// stop ends the process and checks that it stopped cleanly.
func (p *inProcess) stop(t *testing.T) {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("ticketd: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("ticketd did not stop")
	}
}

// TestTicketdEmail: ticketd with --smtp and --smtp-relay: an email account created
// over the API, a real email to the SMTP listener opens a ticket, and the
// acknowledgement with the ticket number reaches the relay.
func TestTicketdEmail(t *testing.T) {
	relay, relayAddr := startRelay(t)
	dir := t.TempDir()
	p := startInProcess(t, "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0",
		"--smtp", "127.0.0.1:0", "--smtp-relay", relayAddr, "--smtp-relay-security", "none", "--smtp-hostname", "ticketd.test")
	httpAddr, smtpAddr := p.httpAddr, p.smtp
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

// loggedWith reports whether a record with message msg and attribute key = value was
// logged.
func (l *lockedBuffer) loggedWith(msg, key, value string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg && rec[key] == value {
			return true
		}
	}
	return false
}

// TestOutboxOneProcessAtATime: two processes on one NATS server, both with
// --smtp-relay. Each acknowledgement reaches the relay once, sent by the holder of the
// outbox's lease; when the holder stops, the other process takes the sending over.
func TestOutboxOneProcessAtATime(t *testing.T) {
	srv := jstest.StartServer(t, "", nil)
	relay, relayAddr := startRelay(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	procs := make([]*inProcess, len(dirs))
	for i, dir := range dirs {
		procs[i] = startInProcess(t, "--data", dir, "--http", "127.0.0.1:0", "--nats-url", srv.ClientURL(), "--lease-ttl", "2s",
			"--smtp", "127.0.0.1:0", "--smtp-relay", relayAddr, "--smtp-relay-security", "none", "--smtp-hostname", "ticketd.test")
	}
	token, err := os.ReadFile(filepath.Join(dirs[0], "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", "http://"+procs[0].httpAddr+"/v1/email-accounts/support@example.com", strings.NewReader(`{"name": "Support"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("create the email account: %v %v", res, err)
	}
	res.Body.Close()

	sent := 0
	mail := func(p *inProcess, n int) {
		t.Helper()
		for range n {
			sent++
			// A customer each: automatic replies to one address are rate-limited.
			from := fmt.Sprintf("customer%d@customer.example", sent)
			msg := fmt.Sprintf("From: <%s>\r\nTo: support@example.com\r\nSubject: Printer %d\r\n"+
				"Message-ID: <outbox-%d@customer.example>\r\n\r\nSmoke.\r\n", from, sent, sent)
			// The account reaches each process's catalogue through the events: a
			// process that has not seen it yet refuses the recipient, for a moment.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				err := netsmtp.SendMail(p.smtp, nil, from, []string{"support@example.com"}, []byte(msg))
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
			}
		}
	}
	// acks waits until the relay has want acknowledgements, checks that no more come
	// and that each is for a ticket of its own.
	acks := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); len(relay.messages()) < want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d acknowledgements reached the relay, want %d", len(relay.messages()), want)
			}
		}
		time.Sleep(time.Second) // a second sender would have sent by now
		numbers := map[string]bool{}
		for _, m := range relay.messages() {
			numbers[string(regexp.MustCompile(`TKT-\d{4}-\d{6}`).Find(m))] = true
		}
		if got := relay.messages(); len(got) != want || len(numbers) != want {
			t.Fatalf("the relay got %d messages for %d tickets, want %d of each: sent by more than one process", len(got), len(numbers), want)
		}
	}
	holder := func() int {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for i, p := range procs {
				if !p.stopped && p.logs.loggedWith("lease acquired; starting the work", "lease", outboxLease) {
					return i
				}
			}
		}
		t.Fatal("no process took the outbox's lease")
		return -1
	}

	first := holder()
	other := 1 - first
	mail(procs[other], 3)
	acks(3)

	procs[first].stop(t) // releases the lease
	if holder() != other {
		t.Fatal("the outbox's lease did not move to the other process")
	}
	mail(procs[other], 2)
	acks(5)
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM files and
// returns their paths and a client configuration that trusts the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, client *tls.Config) {
	t.Helper()
	c := emailtest.SelfSigned(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Client
}

// TestTicketdSMTPTLS: with --smtp-tls-cert/--smtp-tls-key the SMTP listener offers
// STARTTLS, and with --smtp-require-tls it takes mail only over TLS; a certificate
// without its key, or requiring TLS without a certificate, stops ticketd at start.
func TestTicketdSMTPTLS(t *testing.T) {
	certFile, keyFile, clientTLS := writeSelfSigned(t)
	p := startInProcess(t, "--data", filepath.Join(t.TempDir(), "data"), "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0",
		"--smtp-hostname", "ticketd.test", "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-tls")
	plain, err := smtp.Dial(p.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Hello("mta.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	var se *smtp.SMTPError
	if err := plain.Mail("alice@customer.example", nil); !errors.As(err, &se) || se.Code != 530 {
		t.Fatalf("MAIL without TLS: %v", err)
	}
	secure, err := smtp.DialStartTLS(p.smtp, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	if err := secure.Mail("alice@customer.example", nil); err != nil {
		t.Fatalf("MAIL over TLS: %v", err)
	}

	for _, args := range [][]string{
		{"--smtp-tls-cert", certFile},
		{"--smtp-require-tls"},
	} {
		cfg, err := parseConfig(append([]string{"--data", filepath.Join(t.TempDir(), "data"), "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"}, args...))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = run(ctx, cfg, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "TLS") && !strings.Contains(err.Error(), "tls") {
			t.Errorf("ticketd %v: started or failed for another reason: %v", args, err)
		}
	}
}
