package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/email"
	"github.com/ticketcore/ticketcore/projections"
)

// The email channel of ticketd (docs/email.md): SMTP and LMTP listeners, the IMAP
// poller and the outbox, all off unless configured.

// emailConfig is the email channel's configuration: each flag also reads an
// environment variable.
type emailConfig struct {
	smtpAddr, lmtpAddr string
	maxSize            int64
	hostname           string
	imapPoll           time.Duration
	relay              relayConfig
	autoReplyLimit     int
	outboxMaxAge       time.Duration
	tlsCert, tlsKey    string // the listeners' certificate for STARTTLS
	requireTLS         bool
}

// serverTLS is the listeners' STARTTLS configuration, nil without a certificate.
func (c emailConfig) serverTLS() (*tls.Config, error) {
	if c.tlsCert == "" && c.tlsKey == "" {
		return nil, nil
	}
	if c.tlsCert == "" || c.tlsKey == "" {
		return nil, errors.New("email: --smtp-tls-cert and --smtp-tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("email: listener certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// relayConfig is the default relay's settings.
type relayConfig struct {
	addr, user, password, security string
}

func (c emailConfig) enabled() bool {
	return c.smtpAddr != "" || c.lmtpAddr != "" || c.imapPoll > 0 || c.relay.addr != ""
}

func envInt(name string, fallback int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return fallback
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

func addEmailFlags(fs *flag.FlagSet, c *emailConfig) {
	host, _ := os.Hostname()
	fs.StringVar(&c.smtpAddr, "smtp", os.Getenv("TICKETD_SMTP"), "SMTP listen address for inbound mail, e.g. 127.0.0.1:2525; empty: off (env TICKETD_SMTP)")
	fs.StringVar(&c.lmtpAddr, "lmtp", os.Getenv("TICKETD_LMTP"), "LMTP listen address for inbound mail (Postfix lmtp transport), e.g. 127.0.0.1:2424; empty: off (env TICKETD_LMTP)")
	fs.Int64Var(&c.maxSize, "smtp-max-size", envInt("TICKETD_SMTP_MAX_SIZE", email.DefaultMaxMessageBytes), "largest inbound message in bytes; larger ones are refused with 552 5.3.4 (env TICKETD_SMTP_MAX_SIZE)")
	fs.StringVar(&c.hostname, "smtp-hostname", envOr("TICKETD_SMTP_HOSTNAME", host), "host name in the SMTP/LMTP greeting and the relay EHLO (env TICKETD_SMTP_HOSTNAME)")
	fs.DurationVar(&c.imapPoll, "imap-poll", envDuration("TICKETD_IMAP_POLL"), "poll the IMAP mailboxes of the email accounts this often, e.g. 1m; 0: off (env TICKETD_IMAP_POLL)")
	fs.StringVar(&c.relay.addr, "smtp-relay", os.Getenv("TICKETD_SMTP_RELAY"), "SMTP relay host:port for outbound mail (replies, acknowledgements); empty: no outbound mail (env TICKETD_SMTP_RELAY)")
	fs.StringVar(&c.relay.user, "smtp-relay-user", os.Getenv("TICKETD_SMTP_RELAY_USER"), "relay user name (AUTH PLAIN, over TLS only) (env TICKETD_SMTP_RELAY_USER)")
	fs.StringVar(&c.relay.password, "smtp-relay-password", os.Getenv("TICKETD_SMTP_RELAY_PASSWORD"), "relay password (env TICKETD_SMTP_RELAY_PASSWORD)")
	fs.StringVar(&c.relay.security, "smtp-relay-security", envOr("TICKETD_SMTP_RELAY_SECURITY", "starttls"), "starttls (when offered), starttls-required, tls (implicit, port 465) or none (env TICKETD_SMTP_RELAY_SECURITY)")
	fs.IntVar(&c.autoReplyLimit, "auto-reply-limit", int(envInt("TICKETD_AUTO_REPLY_LIMIT", 3)), "most automatic acknowledgements to one address per hour; -1: none at all (env TICKETD_AUTO_REPLY_LIMIT)")
	fs.StringVar(&c.tlsCert, "smtp-tls-cert", os.Getenv("TICKETD_SMTP_TLS_CERT"), "PEM certificate (chain) the SMTP and LMTP listeners offer with STARTTLS; empty: no STARTTLS (env TICKETD_SMTP_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "smtp-tls-key", os.Getenv("TICKETD_SMTP_TLS_KEY"), "PEM private key of --smtp-tls-cert (env TICKETD_SMTP_TLS_KEY)")
	fs.BoolVar(&c.requireTLS, "smtp-require-tls", os.Getenv("TICKETD_SMTP_REQUIRE_TLS") == "1", "refuse mail (530 5.7.0) on a listener connection that did not start TLS; needs --smtp-tls-cert (env TICKETD_SMTP_REQUIRE_TLS=1)")
	fs.DurationVar(&c.outboxMaxAge, "smtp-outbox-max-age", envDuration("TICKETD_SMTP_OUTBOX_MAX_AGE"), "do not mail replies older than this when first seen (a first start on a store with history); 0: mail every reply (env TICKETD_SMTP_OUTBOX_MAX_AGE)")
}

// namedRelays reads the relays accounts name: TICKETD_RELAY_<NAME>=host:port, with
// TICKETD_RELAY_<NAME>_USER, _PASSWORD and _SECURITY. An account's relay "eu-west"
// is TICKETD_RELAY_EU_WEST.
func namedRelays(base relayConfig, hello string) map[string]*email.Relay {
	relays := map[string]*email.Relay{}
	if base.addr != "" {
		relays[""] = &email.Relay{Addr: base.addr, Username: base.user, Password: base.password, Security: base.security, HelloName: hello}
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, "TICKETD_RELAY_")
		if !ok || v == "" || strings.HasSuffix(name, "_USER") || strings.HasSuffix(name, "_PASSWORD") || strings.HasSuffix(name, "_SECURITY") {
			continue
		}
		relays[strings.ToLower(strings.ReplaceAll(name, "_", "-"))] = &email.Relay{
			Addr: v, Username: os.Getenv(k + "_USER"), Password: os.Getenv(k + "_PASSWORD"),
			Security: envOr(k+"_SECURITY", "starttls"), HelloName: hello,
		}
	}
	// Account relay names are matched case-insensitively and with - or _.
	for name, r := range relays {
		relays[strings.ReplaceAll(name, "-", "_")] = r
	}
	return relays
}

// emailService is the email channel. It is a projection (its Index) for the runner
// even when the channel is off, then without cost.
type emailService struct {
	cfg     emailConfig
	dataDir string
	h       *commands.Handler
	log     *slog.Logger
	index   *email.Index
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func newEmailService(cfg emailConfig, dataDir string, h *commands.Handler, log *slog.Logger) *emailService {
	s := &emailService{cfg: cfg, dataDir: dataDir, h: h, log: log.With("component", "email"), stop: func() {}}
	if cfg.enabled() {
		s.index = email.NewIndex()
	}
	return s
}

func (s *emailService) Name() string { return "email" }
func (s *emailService) Apply(e domain.Event, pos uint64) error {
	if s.index == nil {
		return nil
	}
	return s.index.Apply(e, pos)
}
func (s *emailService) Position() uint64 {
	if s.index == nil {
		return ^uint64(0) // never holds the runner back
	}
	return s.index.Position()
}
func (s *emailService) Reset() {
	if s.index != nil {
		s.index.Reset()
	}
}

// attachmentStore is where the channel keeps attachments, in the data folder.
func (s *emailService) attachmentStore() (*email.AttachmentStore, error) {
	dir, err := filepath.Abs(filepath.Join(s.dataDir, "attachments"))
	if err != nil {
		return nil, err
	}
	return &email.AttachmentStore{Dir: dir}, nil
}

// outbox returns the sender of outbound mail, nil without a relay. It runs as a
// singleton (cluster.go): of several processes on one NATS, one at a time sends, so
// that a reply is not mailed once per process.
func (s *emailService) outbox(runner *projections.Runner) (*email.Outbox, error) {
	if s.index == nil || s.cfg.relay.addr == "" {
		return nil, nil
	}
	store, err := s.attachmentStore()
	if err != nil {
		return nil, err
	}
	s.log.Info("outbound mail through the relay", "relay", s.cfg.relay.addr, "security", s.cfg.relay.security)
	return &email.Outbox{Handler: s.h, Index: s.index, Accounts: s.h.Catalogues(), Attachments: store,
		Relays: namedRelays(s.cfg.relay, s.cfg.hostname), WaitFor: runner.WaitFor, MaxAge: s.cfg.outboxMaxAge, Log: s.log}, nil
}

// start opens the listeners and starts the poller; stopAndWait ends them.
func (s *emailService) start(ctx context.Context, runner *projections.Runner) error {
	if s.index == nil {
		return nil
	}
	ctx, s.stop = context.WithCancel(ctx)
	store, err := s.attachmentStore()
	if err != nil {
		return err
	}
	serverTLS, err := s.cfg.serverTLS()
	if err != nil {
		return err
	}
	in := &email.Ingester{Handler: s.h, Index: s.index, Accounts: s.h.Catalogues(), Attachments: store, WaitFor: runner.WaitFor,
		AutoReplyLimit: s.cfg.autoReplyLimit, Log: s.log}
	if s.cfg.autoReplyLimit == 0 {
		in.AutoReplyLimit = -1 // 0 given explicitly: no automatic replies
	}
	for _, l := range []struct {
		addr string
		lmtp bool
	}{{s.cfg.smtpAddr, false}, {s.cfg.lmtpAddr, true}} {
		if l.addr == "" {
			continue
		}
		srv, err := email.NewServer(in, email.ServerConfig{LMTP: l.lmtp, Domain: s.cfg.hostname, MaxMessageBytes: s.cfg.maxSize,
			TLS: serverTLS, RequireTLS: s.cfg.requireTLS, Log: s.log})
		if err != nil {
			s.stopAndWait()
			return err
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.stopAndWait()
			return fmt.Errorf("email listener: %w", err)
		}
		kind := map[bool]string{false: "SMTP", true: "LMTP"}[l.lmtp]
		s.log.Info(kind+" listening for inbound mail", "addr", ln.Addr().String(), "max_size", s.cfg.maxSize,
			"starttls", serverTLS != nil, "require_tls", s.cfg.requireTLS)
		s.goRun(func() {
			if err := email.Serve(ctx, srv, ln); err != nil {
				s.log.Error(kind+" listener stopped", "err", err)
			}
		})
	}
	if s.cfg.imapPoll > 0 {
		p := &email.Poller{Ingester: in, Accounts: s.h.Catalogues(), Interval: s.cfg.imapPoll, MaxMessageBytes: s.cfg.maxSize, Log: s.log}
		s.log.Info("polling the IMAP mailboxes of the email accounts", "interval", s.cfg.imapPoll)
		s.goRun(func() { p.Run(ctx) })
	}
	return nil
}

func (s *emailService) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// stopAndWait stops the channel and waits (bounded) for its work in progress.
func (s *emailService) stopAndWait() {
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.log.Warn("email channel did not stop in time")
	}
}
