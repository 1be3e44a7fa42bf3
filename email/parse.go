// Package email is the email channel of ticketcore: inbound mail over SMTP, LMTP and
// IMAP polling, parsed with go-message and threaded into tickets; outbound replies and
// acknowledgements composed with go-message and handed to an SMTP relay by an outbox
// that records its progress as events on the tickets. See docs/email.md.
package email

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // legacy charsets (ISO-8859-x, Windows-125x, ...) for bodies and encoded words
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
)

// ErrMalformed is returned for a message whose header cannot be read: nothing about
// it (sender, subject, Message-ID) can be trusted, so it is refused and nothing is
// stored. A readable header with a broken body is not an error: see Inbound.Problems.
var ErrMalformed = errors.New("malformed message")

// Limits of the parser, so that a hostile message cannot make it work without end.
const (
	maxParts      = 500
	maxHeaderSize = 256 << 10
)

// Address is a mailbox of a header (lower-cased address).
type Address struct {
	Name    string
	Address string
}

// Part is an attachment or an inline part other than the text and HTML bodies.
type Part struct {
	Name        string
	ContentType string
	ContentID   string // without angle brackets
	Inline      bool
	Data        []byte
}

// DSNRecipient is one recipient of a delivery status notification.
type DSNRecipient struct {
	Recipient  string // Final-Recipient (or Original-Recipient), the bare address
	Action     string // failed, delayed, delivered, relayed, expanded
	Status     string // RFC 3463 code, e.g. 5.1.1
	Diagnostic string // Diagnostic-Code, e.g. "smtp; 550 5.1.1 user unknown"
}

// DSN is a delivery status notification (RFC 3464).
type DSN struct {
	ReportingMTA string
	// OriginalMessageID is the Message-ID of the message the report is about, from the
	// returned message or its headers.
	OriginalMessageID string
	Recipients        []DSNRecipient
}

// Inbound is a parsed inbound message.
type Inbound struct {
	// MessageID is the Message-ID without angle brackets; empty when absent.
	MessageID  string
	InReplyTo  []string
	References []string
	From       *Address
	ReplyTo    []Address
	To, CC     []Address
	Subject    string
	Date       time.Time
	// Text and HTML are the bodies, in UTF-8. Text is derived from HTML when the
	// message has no text part.
	Text, HTML  string
	Attachments []Part
	// Header is the top-level header (for the loop rules).
	Header mail.Header
	// DSN is set when the message holds a delivery status; Report when it is a
	// multipart/report of report-type delivery-status.
	DSN    *DSN
	Report bool
	// Problems lists what could not be parsed and how it was recovered (a broken
	// multipart body is kept as plain text).
	Problems []string
	// Size is the size of the raw message.
	Size int64
}

// ParseInbound parses a raw RFC 5322 message. Only an unreadable header is an error
// (ErrMalformed); a body that cannot be parsed as MIME is kept as plain text and the
// problem listed in Problems. It never panics on any input (FuzzParseInbound).
func ParseInbound(raw []byte) (*Inbound, error) {
	in := &Inbound{Size: int64(len(raw))}
	e, err := message.ReadWithOptions(bytes.NewReader(raw), &message.ReadOptions{MaxHeaderBytes: maxHeaderSize})
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err != nil {
		in.Problems = append(in.Problems, err.Error())
	}
	h := mail.Header{Header: e.Header}
	if !h.Has("From") && !h.Has("Sender") && !h.Has("Return-Path") && !h.Has("Message-Id") && !h.Has("Subject") {
		return nil, fmt.Errorf("%w: no From, Subject or Message-ID header", ErrMalformed)
	}
	in.Header = h
	in.readHeader()
	if werr := in.walk(e); werr != nil {
		in.Problems = append(in.Problems, "MIME structure: "+werr.Error())
		if strings.TrimSpace(in.Text) == "" && strings.TrimSpace(in.HTML) == "" {
			// Plain-text fallback: the raw body after the header, as text.
			in.Text = fallbackText(raw)
			in.Problems = append(in.Problems, "the body is kept as plain text")
		}
	}
	if strings.TrimSpace(in.Text) == "" && in.HTML != "" {
		in.Text = HTMLToText(in.HTML)
	}
	return in, nil
}

func (in *Inbound) readHeader() {
	h := in.Header
	in.MessageID = msgID(h.Get("Message-Id"))
	in.InReplyTo = msgIDList(h.Get("In-Reply-To"))
	in.References = msgIDList(h.Get("References"))
	if s, err := h.Subject(); err == nil {
		in.Subject = s
	} else {
		in.Subject = h.Get("Subject")
	}
	in.Subject = cleanLine(in.Subject)
	if d, err := h.Date(); err == nil {
		in.Date = d
	}
	from := addresses(h, "From")
	if len(from) == 0 {
		from = addresses(h, "Sender")
	}
	if len(from) > 0 {
		in.From = &from[0]
	}
	in.ReplyTo = addresses(h, "Reply-To")
	in.To = addresses(h, "To")
	in.CC = addresses(h, "Cc")
}

// msgIDPattern finds message IDs in a header, whatever the quality of its syntax.
var msgIDPattern = regexp.MustCompile(`<([^<>\s]{1,995})>`)

// msgID is the first message ID of a header value, without angle brackets.
func msgID(v string) string {
	if l := msgIDList(v); len(l) > 0 {
		return l[0]
	}
	v = strings.TrimSpace(v)
	if v != "" && !strings.ContainsAny(v, " \t<>") && strings.Contains(v, "@") && len(v) < 996 {
		return v // a Message-ID without its angle brackets
	}
	return ""
}

// msgIDList parses In-Reply-To and References leniently: every <...> in order.
func msgIDList(v string) []string {
	var out []string
	for _, m := range msgIDPattern.FindAllStringSubmatch(v, 100) {
		out = append(out, m[1])
	}
	return out
}

var addrPattern = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?`)

// addresses parses an address list header; when it is not valid RFC 5322, the
// addresses found in it are used.
func addresses(h mail.Header, key string) []Address {
	v := h.Get(key)
	if v == "" {
		return nil
	}
	var out []Address
	list, err := h.AddressList(key)
	if err == nil {
		for _, a := range list {
			out = append(out, Address{Name: cleanLine(a.Name), Address: strings.ToLower(a.Address)})
		}
		return out
	}
	for _, a := range addrPattern.FindAllString(v, 50) {
		out = append(out, Address{Address: strings.ToLower(a)})
	}
	return out
}

// walk reads the MIME tree: text and HTML bodies, attachments, and the parts of a
// delivery status notification.
func (in *Inbound) walk(e *message.Entity) error {
	topType, topParams, _ := e.Header.ContentType()
	isReport := topType == "multipart/report" && strings.EqualFold(topParams["report-type"], "delivery-status")
	in.Report = isReport
	parts := 0
	var dsn DSN
	sawStatus := false
	return finish(e.Walk(func(path []int, part *message.Entity, err error) error {
		if parts++; parts > maxParts {
			return fmt.Errorf("more than %d parts", maxParts)
		}
		if err != nil {
			in.Problems = append(in.Problems, fmt.Sprintf("part %v: %v", path, err))
		}
		if part.MultipartReader() != nil {
			return nil
		}
		ct, params, cterr := part.Header.ContentType()
		if cterr != nil || ct == "" {
			ct = "text/plain"
		}
		disp, dparams, _ := part.Header.ContentDisposition()
		body, rerr := io.ReadAll(part.Body)
		if rerr != nil {
			return rerr
		}
		switch ct {
		case "message/delivery-status", "message/global-delivery-status":
			sawStatus = true
			parseDeliveryStatus(body, &dsn)
			in.DSN = &dsn
			return nil
		case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
			if (isReport || sawStatus) && dsn.OriginalMessageID == "" {
				if th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body))); err == nil || th.Len() > 0 {
					dsn.OriginalMessageID = msgID(th.Get("Message-Id"))
				}
				if in.DSN != nil || isReport {
					in.DSN = &dsn
				}
				return nil
			}
		}
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		name = cleanLine(decodeWords(name))
		attachment := disp == "attachment" || name != "" && disp != "inline"
		if !attachment && strings.HasPrefix(ct, "text/") && (ct == "text/plain" || ct == "text/html") {
			text := toUTF8(body, params["charset"], err)
			if ct == "text/html" {
				if in.HTML == "" {
					in.HTML = text
				} else {
					in.HTML += "\n" + text
				}
			} else if in.Text == "" {
				in.Text = text
			} else {
				in.Text += "\n" + text
			}
			return nil
		}
		p := Part{
			Name:        name,
			ContentType: ct,
			ContentID:   strings.Trim(strings.TrimSpace(part.Header.Get("Content-Id")), "<>"),
			Inline:      !attachment,
			Data:        body,
		}
		if p.Name == "" {
			p.Name = defaultName(p, len(in.Attachments)+1)
		}
		in.Attachments = append(in.Attachments, p)
		return nil
	}), func() {
		if isReport && in.DSN == nil {
			in.DSN = &dsn
		}
	})
}

func finish(err error, then func()) error {
	then()
	return err
}

// defaultName names a part that has no file name: an inline image by its Content-ID
// (so that cid: references in the HTML can be resolved), else by its position.
func defaultName(p Part, n int) string {
	if p.ContentID != "" {
		return p.ContentID
	}
	ext := ""
	if exts, _ := mime.ExtensionsByType(p.ContentType); len(exts) > 0 {
		ext = exts[0]
	}
	if p.ContentType == "message/rfc822" {
		ext = ".eml"
	}
	return fmt.Sprintf("part-%d%s", n, ext)
}

// decodeWords decodes RFC 2047 encoded words in a parameter (some mailers encode file
// names that way although RFC 2231 is the standard).
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var h message.Header
	h.Set("X", s)
	if d, err := h.Text("X"); err == nil {
		return d
	}
	return s
}

// toUTF8 returns a text body as valid UTF-8. go-message has already converted a known
// charset; a body in an unknown charset, or with none and 8-bit bytes, is read as
// Windows-1252 (a superset of ISO-8859-1 and the usual culprit).
func toUTF8(body []byte, charset string, partErr error) string {
	if utf8.Valid(body) {
		return normalizeNewlines(string(body))
	}
	if s, err := charmap.Windows1252.NewDecoder().Bytes(body); err == nil {
		return normalizeNewlines(string(s))
	}
	return normalizeNewlines(strings.ToValidUTF8(string(body), "\uFFFD"))
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// fallbackText is the raw body after the header, as text: what a broken MIME message
// is kept as.
func fallbackText(raw []byte) string {
	body := raw
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(raw, []byte(sep)); i >= 0 {
			body = raw[i+len(sep):]
			break
		}
	}
	return toUTF8(body, "", nil)
}

// cleanLine makes a header value one line of valid UTF-8.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// parseDeliveryStatus reads the per-message and per-recipient fields of a
// message/delivery-status body: header blocks separated by blank lines.
func parseDeliveryStatus(body []byte, dsn *DSN) {
	br := bufio.NewReader(bytes.NewReader(body))
	for block := 0; block < 200; block++ {
		// Skip blank lines between blocks.
		for {
			b, err := br.Peek(1)
			if err != nil {
				return
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			br.ReadByte()
		}
		h, err := textproto.ReadHeader(br)
		if h.Len() == 0 {
			return
		}
		if block == 0 && h.Has("Reporting-Mta") {
			dsn.ReportingMTA = typedValue(h.Get("Reporting-Mta"))
		}
		rcpt := typedValue(h.Get("Final-Recipient"))
		if rcpt == "" {
			rcpt = typedValue(h.Get("Original-Recipient"))
		}
		if rcpt != "" {
			dsn.Recipients = append(dsn.Recipients, DSNRecipient{
				Recipient:  strings.ToLower(strings.Trim(rcpt, "<>")),
				Action:     strings.ToLower(strings.TrimSpace(h.Get("Action"))),
				Status:     firstField(h.Get("Status")),
				Diagnostic: cleanLine(typedValue(h.Get("Diagnostic-Code"))),
			})
		}
		if err != nil {
			return
		}
	}
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// typedValue strips the type of "rfc822; bob@example.com" or "dns; mx.example.com".
func typedValue(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		return strings.TrimSpace(after)
	}
	return strings.TrimSpace(v)
}

// syntheticMessageID names a message that has no Message-ID by its content, so that
// the same message delivered twice is still recognised.
func syntheticMessageID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]) + "@no-message-id.invalid"
}

// boundedID keeps a Message-ID usable as a thread message ID: an absurdly long one is
// replaced by its hash.
func boundedID(id string) string {
	if len(id) <= 250 && utf8.ValidString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16]) + "@long-message-id.invalid"
}
