package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Relay is an SMTP relay (smarthost) outbound mail is handed to.
type Relay struct {
	// Addr is host:port.
	Addr     string
	Username string
	Password string
	// Security is "starttls" (the default: STARTTLS when the relay offers it),
	// "starttls-required", "tls" (implicit TLS, port 465) or "none".
	Security string
	// TLSConfig is used for TLS (nil: system roots, server name from Addr).
	TLSConfig *tls.Config
	// HelloName is the EHLO name (default: the host name).
	HelloName string
	// Timeout bounds one delivery (default 2 minutes).
	Timeout time.Duration

	mu          sync.Mutex
	offersTLS   bool // learnt: the relay offered STARTTLS
	probedTLSAt time.Time
}

// SendResult is the relay's answer to an accepted message.
type SendResult struct {
	Response string   // the text of the 250 reply to the end of data
	Refused  []string // recipients refused while the others were accepted
}

// SendError is a failed delivery attempt.
type SendError struct {
	Code         int
	EnhancedCode string
	Reason       string
	Permanent    bool
}

func (e *SendError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%d %s %s", e.Code, e.EnhancedCode, e.Reason)
	}
	return e.Reason
}

// Send hands one message to the relay: MAIL FROM from, RCPT TO each recipient, DATA.
// A recipient refused with 5xx is skipped (listed in Refused) if another one is
// accepted; any 4xx makes the attempt a temporary failure. The context cancels the
// conversation (the connection is closed, so a message is never half accepted).
func (r *Relay) Send(ctx context.Context, from string, rcpts []string, msg []byte) (SendResult, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := r.dial(ctx)
	if err != nil {
		return SendResult{}, classify(err)
	}
	defer c.Close()
	if r.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !loopback(r.Addr) {
			return SendResult{}, &SendError{Reason: "refusing to send the relay password without TLS (the relay offered no STARTTLS)", Permanent: false}
		}
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return SendResult{}, classify(err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return SendResult{}, classify(err)
	}
	var res SendResult
	var lastRefusal error
	accepted := 0
	for _, rcpt := range rcpts {
		if err := c.Rcpt(rcpt, nil); err != nil {
			se := classify(err)
			if !se.Permanent {
				return SendResult{}, se
			}
			res.Refused, lastRefusal = append(res.Refused, rcpt), se
			continue
		}
		accepted++
	}
	if accepted == 0 {
		if lastRefusal == nil {
			lastRefusal = &SendError{Reason: "no recipients", Permanent: true}
		}
		return SendResult{}, lastRefusal
	}
	w, err := c.Data()
	if err != nil {
		return SendResult{}, classify(err)
	}
	if _, err := w.Write(msg); err != nil {
		return SendResult{}, classify(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return SendResult{}, classify(err)
	}
	res.Response = resp.StatusText
	_ = c.Quit()
	return res, nil
}

func (r *Relay) dial(ctx context.Context) (*smtp.Client, error) {
	security := r.Security
	if security == "" {
		security = "starttls"
	}
	host, _, _ := net.SplitHostPort(r.Addr)
	cfg := r.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	switch security {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, cfg))
	case "none":
		c = smtp.NewClient(conn)
	case "starttls-required":
		c, err = smtp.NewClientStartTLS(conn, cfg)
	case "starttls":
		r.mu.Lock()
		known := r.offersTLS && time.Since(r.probedTLSAt) < time.Hour
		r.mu.Unlock()
		if known {
			c, err = smtp.NewClientStartTLS(conn, cfg)
			break
		}
		// go-smtp upgrades only on a fresh connection: probe the capabilities first,
		// and when STARTTLS is offered reconnect with it (remembered for an hour).
		c = smtp.NewClient(conn)
		c.CommandTimeout = commandTimeout(ctx)
		if err := c.Hello(r.helloName()); err != nil {
			c.Close()
			return nil, err
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return c, nil
		}
		c.Close()
		r.mu.Lock()
		r.offersTLS, r.probedTLSAt = true, time.Now()
		r.mu.Unlock()
		if conn, err = r.connect(ctx); err != nil {
			return nil, err
		}
		c, err = smtp.NewClientStartTLS(conn, cfg)
	default:
		conn.Close()
		return nil, &SendError{Reason: "unknown relay security " + security}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.CommandTimeout = commandTimeout(ctx)
	c.SubmissionTimeout = c.CommandTimeout
	if err := c.Hello(r.helloName()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// connect dials the relay; the connection is closed when ctx ends.
func (r *Relay) connect(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return &stopConn{Conn: conn, stop: stop}, nil
}

type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// commandTimeout outlasts the context a little: the context, which closes the
// connection, is what ends a conversation, so that a stop is told from a relay that
// does not answer.
func commandTimeout(ctx context.Context) time.Duration {
	return time.Until(deadline(ctx)) + time.Second
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(2 * time.Minute)
}

func (r *Relay) helloName() string {
	if r.HelloName != "" {
		return r.HelloName
	}
	return "localhost"
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// classify turns an SMTP or network error into a SendError: a 5xx reply is
// permanent, a 4xx reply or a network problem temporary.
func classify(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		e := &SendError{Code: smtpErr.Code, Reason: smtpErr.Message, Permanent: smtpErr.Code/100 == 5}
		if smtpErr.EnhancedCode != smtp.NoEnhancedCode && smtpErr.EnhancedCode != smtp.EnhancedCodeNotSet {
			ec := smtpErr.EnhancedCode
			e.EnhancedCode = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		}
		return e
	}
	return &SendError{Reason: err.Error()}
}
