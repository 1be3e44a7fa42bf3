package email

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/ticketcore/ticketcore/domain"
)

// Outgoing is an outbound mail ready to compose.
type Outgoing struct {
	Queued domain.EmailQueued
	// Date is the Date header (when the mail was queued, so every attempt sends the
	// same message).
	Date time.Time
	// Text and HTML are the bodies; HTML may be empty.
	Text, HTML  string
	Attachments []domain.Attachment
	// TicketNumber goes in X-Ticket-Number.
	TicketNumber string
}

// Compose builds the RFC 5322 message of an outbound mail with go-message: UTF-8
// throughout, headers encoded where needed, multipart/alternative when there is HTML,
// multipart/mixed around it when there are attachments (read from store).
// Automatic replies carry Auto-Submitted: auto-replied (RFC 3834) and
// X-Auto-Response-Suppress: All, so that well-behaved responders do not answer them.
func Compose(o Outgoing, store *AttachmentStore) ([]byte, error) {
	q := o.Queued
	var h mail.Header
	h.SetDate(o.Date.UTC())
	h.SetAddressList("From", []*mail.Address{{Name: q.FromName, Address: q.From}})
	h.SetAddressList("To", addressesOf(q.To))
	h.SetAddressList("Cc", addressesOf(q.CC))
	h.SetSubject(q.Subject)
	h.SetMessageID(q.RFCMessageID)
	if q.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{q.InReplyTo})
	}
	h.SetMsgIDList("References", q.References)
	if q.Kind == domain.EmailKindAutoReply {
		h.Set("Auto-Submitted", "auto-replied")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	if o.TicketNumber != "" {
		h.Set("X-Ticket-Number", o.TicketNumber)
	}

	var buf bytes.Buffer
	if len(o.Attachments) == 0 {
		if o.HTML == "" {
			h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
			w, err := mail.CreateSingleInlineWriter(&buf, h)
			if err != nil {
				return nil, err
			}
			if err := writeAndClose(w, o.Text); err != nil {
				return nil, err
			}
			return buf.Bytes(), nil
		}
		w, err := mail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, err
		}
		if err := writeAlternatives(w, o.Text, o.HTML); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if o.HTML == "" {
		var ih mail.InlineHeader
		ih.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		pw, err := w.CreateSingleInline(ih)
		if err != nil {
			return nil, err
		}
		if err := writeAndClose(pw, o.Text); err != nil {
			return nil, err
		}
	} else {
		iw, err := w.CreateInline()
		if err != nil {
			return nil, err
		}
		if err := writeAlternatives(iw, o.Text, o.HTML); err != nil {
			return nil, err
		}
		if err := iw.Close(); err != nil {
			return nil, err
		}
	}
	for _, a := range o.Attachments {
		if err := writeAttachment(w, a, store); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeAlternatives(w *mail.InlineWriter, text, html string) error {
	for _, part := range []struct{ ct, body string }{{"text/plain", text}, {"text/html", html}} {
		var ih mail.InlineHeader
		ih.SetContentType(part.ct, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ih)
		if err != nil {
			return err
		}
		if err := writeAndClose(pw, part.body); err != nil {
			return err
		}
	}
	return nil
}

func writeAttachment(w *mail.Writer, a domain.Attachment, store *AttachmentStore) error {
	if store == nil {
		return fmt.Errorf("attachment %s: no attachment store", a.Name)
	}
	r, err := store.Open(a.SHA256)
	if err != nil {
		return fmt.Errorf("attachment %s: %w", a.Name, err)
	}
	defer r.Close()
	var ah mail.AttachmentHeader
	ct := a.ContentType
	if mt, params, err := mime.ParseMediaType(ct); err == nil {
		ah.SetContentType(mt, params)
	} else {
		ah.SetContentType("application/octet-stream", nil)
	}
	ah.SetFilename(a.Name)
	pw, err := w.CreateAttachment(ah)
	if err != nil {
		return err
	}
	if _, err := io.Copy(pw, r); err != nil {
		pw.Close()
		return err
	}
	return pw.Close()
}

func writeAndClose(w io.WriteCloser, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func addressesOf(addrs []string) []*mail.Address {
	out := make([]*mail.Address, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, &mail.Address{Address: a})
	}
	return out
}
