package email

// The test harness: the real handler, store (memory adapter), projection runner and
// Index, the real SMTP/LMTP listener on 127.0.0.1, an outbox, and an in-process
// go-smtp server standing for the relay, capturing what it is given. Every SMTP
// conversation is real and on loopback; every wait is bounded.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/email/emailtest"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

const (
	support  = "support@example.com"
	alice    = "alice@customer.example"
	waitTime = 5 * time.Second
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type harness struct {
	t        *testing.T
	ctx      context.Context
	store    eventstore.Store
	h        *commands.Handler
	index    *Index
	runner   *projections.Runner
	in       *Ingester
	outbox   *Outbox
	relay    *testRelay
	smtpAddr string
	dir      string
	stop     context.CancelFunc
	done     sync.WaitGroup
}

type harnessOptions struct {
	store         eventstore.Store
	dir           string
	maxBytes      int64
	noOutbox      bool // do not run the outbox (the test drives Flush)
	relay         *testRelay
	lmtp          bool
	retryBase     time.Duration
	autoReplies   int
	createAccount bool
	serverTLS     *tls.Config // offered with STARTTLS by the listener
	requireTLS    bool
}

// newHarness starts a ticketd-like stack. With opts.store set it is a restart on an
// existing store.
func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if opts.store == nil {
		opts.store = memstore.New()
		opts.createAccount = true
	}
	if opts.dir == "" {
		opts.dir = t.TempDir()
	}
	if opts.relay == nil {
		opts.relay = newTestRelay(t, relayOptions{})
	}
	h, err := commands.NewHandler(ctx, opts.store, commands.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	if opts.createAccount {
		if _, err := h.SaveEmailAccount(ctx, domain.EmailAccount{Address: support, Name: "Example Support", DefaultPriority: "Medium"},
			commands.Meta{CommandID: "account-support"}); err != nil {
			t.Fatal(err)
		}
	}
	hs := &harness{t: t, ctx: ctx, store: opts.store, h: h, index: NewIndex(), relay: opts.relay, dir: opts.dir, stop: cancel}
	hs.runner = projections.NewRunner(opts.store, quiet, hs.index)
	if _, err := hs.runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	hs.goRun(func() { hs.runner.Run(ctx) })
	store := &AttachmentStore{Dir: opts.dir + "/attachments"}
	hs.in = &Ingester{Handler: h, Index: hs.index, Accounts: h.Catalogues(), Attachments: store, WaitFor: hs.runner.WaitFor,
		AutoReplyLimit: opts.autoReplies, Log: quiet}
	retry := opts.retryBase
	if retry == 0 {
		retry = 20 * time.Millisecond
	}
	hs.outbox = &Outbox{Handler: h, Index: hs.index, Accounts: h.Catalogues(), Attachments: store, WaitFor: hs.runner.WaitFor,
		Relays: map[string]*Relay{"": {Addr: opts.relay.addr, HelloName: "ticketd.test", TLSConfig: opts.relay.clientTLS,
			Username: opts.relay.username, Password: opts.relay.password, Timeout: 5 * time.Second}},
		RetryBase: retry, RetryMax: 200 * time.Millisecond, MaxAttempts: 5, Log: quiet}
	if !opts.noOutbox {
		hs.goRun(func() { hs.outbox.Run(ctx) })
	}
	srv, err := NewServer(hs.in, ServerConfig{LMTP: opts.lmtp, Domain: "ticketd.test", MaxMessageBytes: opts.maxBytes,
		TLS: opts.serverTLS, RequireTLS: opts.requireTLS, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.smtpAddr = ln.Addr().String()
	hs.goRun(func() { Serve(ctx, srv, ln) })
	t.Cleanup(hs.close)
	return hs
}

func (hs *harness) goRun(f func()) {
	hs.done.Add(1)
	go func() {
		defer hs.done.Done()
		f()
	}()
}

// close stops everything this harness started and waits for it (bounded).
func (hs *harness) close() {
	hs.stop()
	done := make(chan struct{})
	go func() { hs.done.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTime):
		hs.t.Error("harness did not stop in time")
	}
}

// send delivers a message to the listener with net/smtp, as any MTA would.
func (hs *harness) send(from string, to []string, raw string) error {
	return netsmtp.SendMail(hs.smtpAddr, nil, from, to, []byte(raw))
}

func (hs *harness) mustSend(from string, to []string, raw string) {
	hs.t.Helper()
	if err := hs.send(from, to, raw); err != nil {
		hs.t.Fatalf("send: %v", err)
	}
}

// ticketOf is the ticket a message ID was stored on.
func (hs *harness) ticketOf(messageID string) string {
	hs.t.Helper()
	id, ok := hs.index.TicketByMessage(messageID)
	if !ok {
		hs.t.Fatalf("no ticket has message %s", messageID)
	}
	return id
}

func (hs *harness) events(ticketID string) []domain.Event {
	hs.t.Helper()
	events, err := hs.h.TicketEvents(hs.ctx, ticketID)
	if err != nil {
		hs.t.Fatal(err)
	}
	return events
}

func eventTypes(events []domain.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func countType(events []domain.Event, typ string) int {
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func payloadOf[T domain.Payload](t *testing.T, events []domain.Event) []T {
	t.Helper()
	var out []T
	for _, e := range events {
		if p, ok := e.Payload.(T); ok {
			out = append(out, p)
		}
	}
	return out
}

func (hs *harness) lastPosition() uint64 {
	hs.t.Helper()
	pos, err := hs.store.LastPosition(hs.ctx)
	if err != nil {
		hs.t.Fatal(err)
	}
	return pos
}

// eventually polls cond until it holds (bounded).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawMessage builds a raw message.
func rawMessage(headers [][2]string, body string) string {
	var b strings.Builder
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	if !strings.Contains(b.String(), "Content-Type:") {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return b.String()
}

// newMail is a plain new message from someone to support.
func newMail(from, msgID, subject, body string, extra ...[2]string) string {
	headers := [][2]string{{"From", from}, {"To", support}, {"Subject", subject}, {"Message-ID", "<" + msgID + ">"},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)}}
	return rawMessage(append(headers, extra...), body)
}

// The test relay.

type relayedMessage struct {
	From   string
	Rcpts  []string
	Raw    []byte
	Header mail.Header
	Text   string
}

type relayOptions struct {
	// failData makes the first n DATA commands fail with 451.
	failData int
	// rejectRcpt refuses these recipients with 550 5.1.1.
	rejectRcpt []string
	// tls makes the relay offer STARTTLS and require AUTH PLAIN with the credentials.
	tls bool
	// onMessage is called (in its own goroutine) with each accepted message.
	onMessage func(relayedMessage)
}

type testRelay struct {
	t                  *testing.T
	addr               string
	opts               relayOptions
	clientTLS          *tls.Config
	username, password string

	mu       sync.Mutex
	messages []relayedMessage
	dataSeen int
	arrived  chan struct{}
}

func newTestRelay(t *testing.T, opts relayOptions) *testRelay {
	t.Helper()
	r := &testRelay{t: t, opts: opts, arrived: make(chan struct{}, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r}, nil
	}))
	srv.Domain = "relay.test"
	srv.ErrorLog = slogLogger{}
	srv.ReadTimeout, srv.WriteTimeout = waitTime, waitTime
	if opts.tls {
		serverTLS, clientTLS := selfSignedTLS(t)
		srv.TLSConfig, r.clientTLS = serverTLS, clientTLS
		r.username, r.password = "ticketd", "s3cret"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

type slogLogger struct{}

func (slogLogger) Printf(string, ...interface{}) {}
func (slogLogger) Println(...interface{})        {}

// received returns a copy of what the relay accepted.
func (r *testRelay) received() []relayedMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayedMessage(nil), r.messages...)
}

// waitFor waits until the relay holds n messages and returns them.
func (r *testRelay) waitFor(n int) []relayedMessage {
	r.t.Helper()
	eventually(r.t, fmt.Sprintf("%d message(s) at the relay", n), func() bool { return len(r.received()) >= n })
	return r.received()
}

// quiet waits until the relay has received nothing for d and returns the count.
func (r *testRelay) quietFor(d time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(waitTime)
	last := len(r.received())
	for {
		select {
		case <-r.arrived:
			if time.Now().After(deadline) {
				r.t.Fatal("the relay never went quiet")
			}
			last = len(r.received())
		case <-time.After(d):
			return last
		}
	}
}

type relaySession struct {
	r     *testRelay
	from  string
	rcpts []string
	authd bool
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.username || password != s.r.password {
			return errors.New("bad credentials")
		}
		s.authd = true
		return nil
	}), nil
}
func (s *relaySession) Reset()        { s.from, s.rcpts = "", nil }
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.opts.tls && !s.authd {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	for _, bad := range s.r.opts.rejectRcpt {
		if strings.EqualFold(bad, to) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.dataSeen++
	fail := s.r.dataSeen <= s.r.opts.failData
	s.r.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	}
	m := relayedMessage{From: s.from, Rcpts: s.rcpts, Raw: raw}
	if mr, err := mail.CreateReader(bytes.NewReader(raw)); err == nil {
		m.Header = mr.Header
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if _, ok := p.Header.(*mail.InlineHeader); ok {
				b, _ := io.ReadAll(p.Body)
				if ct, _, _ := p.Header.(*mail.InlineHeader).ContentType(); ct == "text/plain" {
					m.Text = string(b)
				}
			}
		}
	}
	s.r.mu.Lock()
	s.r.messages = append(s.r.messages, m)
	s.r.mu.Unlock()
	s.r.arrived <- struct{}{}
	if s.r.opts.onMessage != nil {
		go s.r.opts.onMessage(m)
	}
	return nil
}

// selfSignedTLS is a server certificate for 127.0.0.1 and a client config trusting it.
func selfSignedTLS(t *testing.T) (*tls.Config, *tls.Config) {
	c := emailtest.SelfSigned(t)
	return c.Server, c.Client
}

// smtpCode is the reply code of a net/smtp error (0 if none).
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
