package email

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// DefaultMaxMessageBytes is the default size limit of an inbound message (25 MB).
const DefaultMaxMessageBytes = 25 << 20

// ServerConfig configures the SMTP or LMTP listener.
type ServerConfig struct {
	// LMTP serves LMTP (RFC 2033: what Postfix's lmtp transport speaks) instead of SMTP.
	LMTP bool
	// Domain is the name in the greeting.
	Domain string
	// MaxMessageBytes refuses larger messages with 552 5.3.4 (default 25 MB).
	MaxMessageBytes int64
	// MaxRecipients per message (default 100).
	MaxRecipients int
	// TLS, when set, is offered with STARTTLS (RFC 3207), so that sending servers can
	// encrypt what they deliver.
	TLS *tls.Config
	// RequireTLS refuses a transaction (MAIL FROM) on a connection that did not start
	// TLS, with 530 5.7.0. It needs TLS.
	RequireTLS bool
	Log        *slog.Logger
}

// NewServer returns a go-smtp server whose sessions hand messages to the ingester.
// Recipients that are not support addresses are refused at RCPT time (550 5.1.1),
// oversized messages with 552 5.3.4 before anything is stored. With cfg.TLS it offers
// STARTTLS, and with cfg.RequireTLS takes no mail without it. It asks no
// authentication: like any MX, it takes mail for its own addresses from anyone and
// refuses the others, whether it faces the internet or sits behind the organisation's
// MTA (Postfix, with an lmtp or smtp transport).
func NewServer(in *Ingester, cfg ServerConfig) (*smtp.Server, error) {
	if cfg.RequireTLS && cfg.TLS == nil {
		return nil, errors.New("email server: requiring TLS needs a certificate")
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	via := "smtp"
	if cfg.LMTP {
		via = "lmtp"
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{in: in, via: via, log: cfg.Log, conn: c, requireTLS: cfg.RequireTLS, remote: c.Conn().RemoteAddr().String()}, nil
	}))
	s.TLSConfig = cfg.TLS // nil: STARTTLS not offered
	s.LMTP = cfg.LMTP
	s.Domain = cfg.Domain
	if s.Domain == "" {
		s.Domain = "localhost"
	}
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = cfg.MaxRecipients
	s.ReadTimeout = 5 * time.Minute
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.ErrorLog = log.New(slogWriter{cfg.Log}, "", 0)
	return s, nil
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn("smtp server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

type session struct {
	in         *Ingester
	via        string
	log        *slog.Logger
	conn       *smtp.Conn
	requireTLS bool
	remote     string
	from       string
	null       bool
	rcpts      []string
}

func (s *session) Reset() {
	s.from, s.null, s.rcpts = "", false, nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.requireTLS {
		if _, ok := s.conn.TLSConnectionState(); !ok {
			return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
		}
	}
	s.from, s.null = from, from == ""
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if _, ok := s.in.Accounts.EmailAccount(to); !ok {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such support address here"}
	}
	s.rcpts = append(s.rcpts, strings.ToLower(to))
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.log.Info("inbound message refused: too large", "from", s.from, "remote", s.remote)
		}
		return err // ErrDataTooLarge: 552 5.3.4, nothing stored
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = s.in.Ingest(ctx, Envelope{MailFrom: s.from, NullSender: s.null, Rcpts: s.rcpts, Via: s.via}, raw)
	if err != nil {
		var rej *RejectError
		if errors.As(err, &rej) {
			s.log.Info("inbound message refused", "from", s.from, "remote", s.remote, "reason", rej.Error())
			return &smtp.SMTPError{Code: rej.Code, EnhancedCode: rej.Enhanced, Message: rej.Message}
		}
		s.log.Warn("inbound message not stored (temporary)", "from", s.from, "remote", s.remote, "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	}
	return nil
}

// Serve runs a server on a listener until ctx ends. Stopping lets messages being
// received finish for up to 5 seconds, then closes the remaining connections (their
// senders retry, and the Message-ID makes the retry harmless).
func Serve(ctx context.Context, s *smtp.Server, ln net.Listener) error {
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(tl) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			tl.closeAll()
		}
		<-done
		return nil
	case err := <-done:
		if errors.Is(err, smtp.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// trackingListener remembers its open connections, so that a stop can close them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.(*trackedConn).Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
