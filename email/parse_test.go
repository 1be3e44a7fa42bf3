package email

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func parseFixture(t *testing.T, name string) *Inbound {
	t.Helper()
	in, err := ParseInbound(readFixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return in
}

func TestParseMultipartAlternative(t *testing.T) {
	in := parseFixture(t, "alternative.eml")
	if in.MessageID != "CAF=alt-0001@mail.customer.example" || in.From.Address != "alice@customer.example" || in.From.Name != "Alice Martin" {
		t.Fatalf("header: %+v %+v", in.MessageID, in.From)
	}
	if in.Subject != "Printer on fire" {
		t.Fatalf("subject %q", in.Subject)
	}
	if !strings.Contains(in.Text, "on fire — smoke everywhere") || strings.Contains(in.Text, "<p>") {
		t.Fatalf("text %q", in.Text)
	}
	if !strings.Contains(in.HTML, "<b>on fire</b> — smoke") {
		t.Fatalf("html %q", in.HTML)
	}
	if len(in.Attachments) != 0 || len(in.Problems) != 0 {
		t.Fatalf("attachments %v problems %v", in.Attachments, in.Problems)
	}
}

func TestParseInlineImageAndAttachment(t *testing.T) {
	in := parseFixture(t, "inline-image.eml")
	if in.Text != "See the screenshot below.\n[image: error.png]" || !strings.Contains(in.HTML, `cid:error-shot@customer.example`) {
		t.Fatalf("bodies %q %q", in.Text, in.HTML)
	}
	if len(in.CC) != 1 || in.CC[0].Address != "carol@customer.example" {
		t.Fatalf("cc %+v", in.CC)
	}
	if len(in.Attachments) != 2 {
		t.Fatalf("attachments %+v", in.Attachments)
	}
	img, pdf := in.Attachments[0], in.Attachments[1]
	if !img.Inline || img.ContentType != "image/png" || img.ContentID != "error-shot@customer.example" || img.Name != img.ContentID ||
		!strings.HasPrefix(string(img.Data), "\x89PNG") {
		t.Fatalf("inline image %+v", img)
	}
	if pdf.Inline || pdf.Name != "invoice 2026-03.pdf" || pdf.ContentType != "application/pdf" || !strings.HasPrefix(string(pdf.Data), "%PDF") {
		t.Fatalf("attachment %+v", pdf)
	}
}

func TestParseLegacyCharsets(t *testing.T) {
	latin := parseFixture(t, "latin1.eml")
	if latin.Subject != "Problème de connexion" || latin.From.Name != "Renée Léger" {
		t.Fatalf("ISO-8859-1 header: %q %q", latin.Subject, latin.From.Name)
	}
	if !strings.Contains(latin.Text, "Je n'arrive plus à me connecter") || !strings.Contains(latin.Text, "« accès refusé »") {
		t.Fatalf("ISO-8859-1 body %q", latin.Text)
	}
	cp := parseFixture(t, "windows1252.eml")
	if !strings.Contains(cp.Text, "€ 1 250") || !strings.Contains(cp.Text, "– please “check” it") || !strings.Contains(cp.Text, "Daniëlle") {
		t.Fatalf("Windows-1252 body %q", cp.Text)
	}
}

func TestParseEncodedWordSubject(t *testing.T) {
	in := parseFixture(t, "encoded-subject.eml")
	if in.Subject != "Grüße 😀 aus München über den Dienst" {
		t.Fatalf("subject %q", in.Subject)
	}
	if in.From.Name != "Jürgen Müller" {
		t.Fatalf("from %q", in.From.Name)
	}
}

func TestParseReplyChains(t *testing.T) {
	for _, tc := range []struct{ file, text, html string }{
		{"outlook-reply.eml", "Thanks, the technician fixed it. You can close the ticket.\n\nAlice",
			"<html><body><div>Thanks, the technician fixed it. You can close the ticket.</div><div>Alice</div>"},
		{"gmail-reply.eml", "It is smoking again since this morning.",
			`<div dir="ltr">It is smoking again since this morning.</div><br>`},
	} {
		in := parseFixture(t, tc.file)
		if got := StripQuoted(in.Text); got != tc.text {
			t.Errorf("%s: text %q, want %q", tc.file, got, tc.text)
		}
		if got := StripQuotedHTML(in.HTML); got != tc.html {
			t.Errorf("%s: html %q, want %q", tc.file, got, tc.html)
		}
		if len(in.InReplyTo) != 1 || in.InReplyTo[0] != "5b1c3c3e-2c2f-5d0e-9a55-0c3c6e1f0a11@example.com" || len(in.References) != 2 {
			t.Errorf("%s: threading %q %q", tc.file, in.InReplyTo, in.References)
		}
	}
}

func TestParseDSN(t *testing.T) {
	in := parseFixture(t, "dsn.eml")
	if !in.Report || in.DSN == nil {
		t.Fatalf("not recognised as a DSN: %+v", in)
	}
	d := in.DSN
	if d.OriginalMessageID != "5b1c3c3e-2c2f-5d0e-9a55-0c3c6e1f0a11@example.com" || d.ReportingMTA != "mx.customer.example" {
		t.Fatalf("dsn %+v", d)
	}
	if len(d.Recipients) != 1 {
		t.Fatalf("recipients %+v", d.Recipients)
	}
	r := d.Recipients[0]
	if r.Recipient != "alice@customer.example" || r.Action != "failed" || r.Status != "5.1.1" || !strings.Contains(r.Diagnostic, "User unknown") {
		t.Fatalf("recipient %+v", r)
	}
}

// TestParseMalformed documents the decision: an unreadable header is refused
// (ErrMalformed, nothing stored); a readable header with a broken MIME body is kept,
// its body as plain text, with the problem listed.
func TestParseMalformed(t *testing.T) {
	if _, err := ParseInbound(readFixture(t, "malformed-header.eml")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("broken header: err = %v, want ErrMalformed", err)
	}
	for _, raw := range []string{"", "\r\n\r\n", "just some text without any header\r\n"} {
		if _, err := ParseInbound([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", raw, err)
		}
	}
	in := parseFixture(t, "malformed-multipart.eml")
	if in.Subject != "Broken attachment" || len(in.Problems) == 0 {
		t.Fatalf("subject %q problems %q", in.Subject, in.Problems)
	}
	if !strings.Contains(in.Text, "not base64 at all") {
		t.Fatalf("plain-text fallback %q", in.Text)
	}
}

func TestParseHTMLOnlyGetsText(t *testing.T) {
	raw := "From: a@customer.example\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<html><head><style>p{}</style></head><body><p>Line&nbsp;one &amp; more</p><div>Line two<br>three</div></body></html>"
	in, err := ParseInbound([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if in.Text != "Line one & more\n\nLine two\nthree" {
		t.Fatalf("text %q", in.Text)
	}
}

func TestNormalizeSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Re: Printer on fire":                   "Printer on fire",
		"RE: Re: Fwd: Printer on fire":          "Printer on fire",
		"AW: WG: Drucker brennt":                "Drucker brennt",
		"SV: Re[2]: Skrivare [TKT-2026-000042]": "Skrivare",
		"TR : Imprimante":                       "Imprimante",
		"Fw: [TKT-2026-000001] Re: Printer":     "Printer",
		"Regarding: the invoice":                "Regarding: the invoice",
		"Reply needed":                          "Reply needed",
	} {
		if got := NormalizeSubject(in); got != want {
			t.Errorf("NormalizeSubject(%q) = %q, want %q", in, got, want)
		}
	}
	if !SameSubject("Re: AW: Printer on fire", "printer on fire [TKT-2026-000001]") {
		t.Error("SameSubject")
	}
	if got := ReplySubject("Re: Printer on fire [TKT-2026-000001]", "TKT-2026-000001"); got != "Re: Printer on fire [TKT-2026-000001]" {
		t.Errorf("ReplySubject = %q", got)
	}
}

func TestStripQuotedKeepsUnquoted(t *testing.T) {
	for _, text := range []string{
		"Just a message.\nWith two lines.",
		"> only a quote",
		"From: the start of my message: this is not an Outlook header",
	} {
		if got := StripQuoted(text); got != strings.TrimSpace(text) {
			t.Errorf("StripQuoted(%q) = %q", text, got)
		}
	}
	fr := "Merci !\n\nLe lun. 2 mars 2026 à 10:05, Support <support@example.com> a écrit :\n> Bonjour"
	if got := StripQuoted(fr); got != "Merci !" {
		t.Errorf("French: %q", got)
	}
	de := "Danke.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Montag"
	if got := StripQuoted(de); got != "Danke." {
		t.Errorf("German: %q", got)
	}
}
