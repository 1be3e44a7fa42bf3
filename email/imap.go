package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ticketcore/ticketcore/domain"
)

// Poller polls the IMAP mailboxes of the email accounts that have one: every
// interval, per account, the unseen messages of the mailbox (INBOX by default) are
// fetched (without setting \Seen), ingested exactly as an SMTP delivery would be, and
// then marked \Seen, or moved to the account's MoveTo folder. A message the ingester
// refuses for good (malformed, too large) is marked \Seen too and left where it is,
// flagged $TicketcoreRejected; after a temporary failure it stays unseen and is tried
// again at the next poll, which the Message-ID makes harmless.
type Poller struct {
	Ingester *Ingester
	Accounts Accounts
	Interval time.Duration
	// MaxMessageBytes skips larger messages (default 25 MB).
	MaxMessageBytes int64
	// PerPoll bounds the messages of one mailbox taken per poll (default 200).
	PerPoll int
	// TLSConfig for TLS and STARTTLS (nil: system roots).
	TLSConfig *tls.Config
	// Password returns the password of an account (default: the environment variable
	// the account names).
	Password func(domain.EmailIMAP) string
	Log      *slog.Logger
}

// FlagRejected marks a polled message the ingester refused for good.
const FlagRejected imap.Flag = "$TicketcoreRejected"

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		p.PollAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// PollAll polls every account that has a mailbox once.
func (p *Poller) PollAll(ctx context.Context) {
	for _, a := range p.Accounts.EmailAccounts() {
		if a.IMAP == nil || ctx.Err() != nil {
			continue
		}
		if n, err := p.Poll(ctx, a); err != nil {
			p.log().Warn("imap poll", "account", a.Address, "server", a.IMAP.Server, "ingested", n, "err", err)
		} else if n > 0 {
			p.log().Info("imap poll", "account", a.Address, "ingested", n)
		}
	}
}

func (p *Poller) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// Poll processes the unseen messages of one account's mailbox and returns how many
// were stored.
func (p *Poller) Poll(ctx context.Context, a domain.EmailAccount) (int, error) {
	cfg := *a.IMAP
	c, err := p.dial(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	password := os.Getenv(cfg.PasswordEnv)
	if p.Password != nil {
		password = p.Password(cfg)
	}
	if err := c.Login(cfg.Username, password).Wait(); err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	mailbox := cfg.Mailbox
	if mailbox == "" {
		mailbox = "INBOX"
	}
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return 0, fmt.Errorf("select %s: %w", mailbox, err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen, imap.FlagDeleted, FlagRejected}}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("search: %w", err)
	}
	uids := found.AllUIDs()
	limit := p.PerPoll
	if limit <= 0 {
		limit = 200
	}
	if len(uids) > limit {
		uids = uids[:limit]
	}
	maxBytes := p.MaxMessageBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	stored := 0
	for _, uid := range uids {
		if ctx.Err() != nil {
			return stored, ctx.Err()
		}
		ok, err := p.one(ctx, c, a, uid, maxBytes)
		if err != nil {
			return stored, err
		}
		if ok {
			stored++
		}
	}
	_ = c.Logout().Wait()
	return stored, nil
}

// one ingests one message; an error stops the poll (temporary trouble).
func (p *Poller) one(ctx context.Context, c *imapclient.Client, a domain.EmailAccount, uid imap.UID, maxBytes int64) (bool, error) {
	set := imap.UIDSetNum(uid)
	sizes, err := c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return false, fmt.Errorf("fetch size of %d: %w", uid, err)
	}
	if len(sizes) == 1 && sizes[0].RFC822Size > maxBytes {
		p.log().Warn("imap: message too large, not stored", "account", a.Address, "uid", uid, "size", sizes[0].RFC822Size)
		return false, p.reject(c, set)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return false, fmt.Errorf("fetch %d: %w", uid, err)
	}
	if len(msgs) != 1 {
		return false, nil // expunged meanwhile
	}
	raw := msgs[0].FindBodySection(section)
	env := Envelope{Account: a.Address, Rcpts: []string{a.Address}, Via: "imap"}
	if rp := strings.TrimSpace(headerValue(raw, "Return-Path")); rp == "<>" {
		env.NullSender = true
	}
	if _, err := p.Ingester.Ingest(ctx, env, raw); err != nil {
		var rej *RejectError
		if errors.As(err, &rej) && !rej.Temporary() {
			p.log().Warn("imap: message refused, flagged", "account", a.Address, "uid", uid, "reason", rej.Error())
			return false, p.reject(c, set)
		}
		return false, fmt.Errorf("ingest %d: %w", uid, err)
	}
	if mv := a.IMAP.MoveTo; mv != "" {
		if _, err := c.Move(set, mv).Wait(); err != nil {
			return true, fmt.Errorf("move %d to %s: %w", uid, mv, err)
		}
		return true, nil
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		return true, fmt.Errorf("mark %d seen: %w", uid, err)
	}
	return true, nil
}

func (p *Poller) reject(c *imapclient.Client, set imap.UIDSet) error {
	return c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, FlagRejected}}, nil).Close()
}

func (p *Poller) dial(ctx context.Context, cfg domain.EmailIMAP) (*imapclient.Client, error) {
	host, _, _ := net.SplitHostPort(cfg.Server)
	tlsCfg := p.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	if tlsCfg.ServerName == "" {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.ServerName = host
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Server)
	if err != nil {
		return nil, err
	}
	var c *imapclient.Client
	opts := &imapclient.Options{TLSConfig: tlsCfg}
	switch cfg.Security {
	case "none":
		c = imapclient.New(conn, opts)
	case "starttls":
		c, err = imapclient.NewStartTLS(conn, opts)
	default:
		c = imapclient.New(tls.Client(conn, tlsCfg), opts)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// headerValue reads one header field of a raw message, without parsing the rest.
func headerValue(raw []byte, key string) string {
	end := len(raw)
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := strings.Index(string(raw[:min(len(raw), maxHeaderSize)]), sep); i >= 0 && i < end {
			end = i
		}
	}
	for _, line := range strings.Split(string(raw[:min(end, len(raw))]), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
