package email

import (
	"html"
	"regexp"
	"strings"
)

// Text helpers: reply chains, HTML to text, subjects.

// replyHeaderLines start the quoted history of a reply, in the wording of the usual
// mail clients and languages: Gmail and Apple Mail ("On ... wrote:"), Outlook
// ("-----Original Message-----", or a "From:/Sent:" block after a rule).
var replyHeaderLines = []*regexp.Regexp{
	regexp.MustCompile(`(?i)^\s*On\s.{1,300}\swrote:\s*$`),
	regexp.MustCompile(`(?i)^\s*Le\s.{1,300}\sa\s[ée]crit\s?:\s*$`),
	regexp.MustCompile(`(?i)^\s*Am\s.{1,300}\sschrieb\s.{0,300}:\s*$`),
	regexp.MustCompile(`(?i)^\s*El\s.{1,300}\sescribi[óo]:\s*$`),
	regexp.MustCompile(`(?i)^\s*Il\s.{1,300}\sha\sscritto:\s*$`),
	regexp.MustCompile(`(?i)^\s*Op\s.{1,300}\sschreef\s.{0,300}:\s*$`),
	regexp.MustCompile(`(?i)^\s*Den\s.{1,300}\sskrev\s.{0,300}:\s*$`),
	regexp.MustCompile(`(?i)^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Oprindelig meddelelse|Ursprungligt meddelande|Opprinnelig melding)\s*-{2,}\s*$`),
	regexp.MustCompile(`(?i)^\s*-{5,}\s*Forwarded message\s*-{5,}\s*$`),
}

// outlookHeader is the first line of the header block Outlook puts above the quoted
// message: "From: Name <addr>" (Von:, De :, Från:, Fra:, Da:, Van:).
var outlookHeader = regexp.MustCompile(`(?i)^\s*\*?(From|Von|De|Från|Fra|Da|Van)\s?:\*?\s`)
var outlookSecond = regexp.MustCompile(`(?i)^\s*\*?(Sent|Date|Gesendet|Envoyé|Skickat|Sendt|Inviato|Verzonden|Enviado|To|An|À|Till|Til|A|Aan|Para)\s?:\*?\s`)
var wrappedStart = regexp.MustCompile(`(?i)^\s*(On|Le|Am|El|Il|Op|Den)\s`)
var wrappedWrote = regexp.MustCompile(`(?i)(wrote|a [ée]crit|schrieb|escribi[óo]|ha scritto|schreef|skrev)\s?:\s*$`)

// StripQuoted cuts the quoted history off a reply's text: everything from the first
// reply header ("On ... wrote:", "-----Original Message-----", Outlook's "From: /
// Sent:" block), and a trailing block of "> " lines. It returns the text unchanged
// when nothing would be left.
func StripQuoted(text string) string {
	lines := strings.Split(text, "\n")
	cut := len(lines)
	for i := 0; i < len(lines) && cut == len(lines); i++ {
		line := strings.TrimRight(lines[i], "\r")
		if len(line) > 400 {
			continue
		}
		trimmed := strings.TrimSpace(line)
		// Every reply header ends with a colon or is a rule of dashes: a cheap filter
		// before the patterns.
		headerLike := strings.HasSuffix(trimmed, ":") || strings.Contains(trimmed, "--")
		for _, re := range replyHeaderLines {
			if !headerLike {
				break
			}
			if re.MatchString(line) {
				cut = i
				break
			}
		}
		if cut != len(lines) {
			break
		}
		// "On Mon, 2 Mar 2026 at 10:00, Alice <alice@example.com>\nwrote:" (wrapped).
		if i+1 < len(lines) && wrappedStart.MatchString(line) &&
			wrappedWrote.MatchString(strings.TrimRight(lines[i+1], "\r")) && len(line) < 300 {
			cut = i
			break
		}
		// Outlook: a rule of underscores, or directly "From: ..." followed by "Sent:"
		// (or Date:/To:) within the next two lines.
		if outlookHeader.MatchString(line) && i > 0 {
			for j := i + 1; j < len(lines) && j <= i+2; j++ {
				if outlookSecond.MatchString(lines[j]) {
					cut = i
					if i > 0 && strings.Trim(strings.TrimSpace(lines[i-1]), "_-") == "" && strings.TrimSpace(lines[i-1]) != "" {
						cut = i - 1
					}
					break
				}
			}
		}
	}
	kept := lines[:cut]
	// A trailing block of quoted lines (bottom-posting clients quote above; a reply
	// that ends in quotes has its new text above them).
	end := len(kept)
	for end > 0 {
		l := strings.TrimSpace(kept[end-1])
		if l == "" || strings.HasPrefix(l, ">") {
			end--
			continue
		}
		break
	}
	if end < len(kept) && end > 0 {
		hasQuote := false
		for _, l := range kept[end:] {
			if strings.HasPrefix(strings.TrimSpace(l), ">") {
				hasQuote = true
			}
		}
		if hasQuote {
			kept = kept[:end]
		}
	}
	out := strings.TrimSpace(strings.Join(kept, "\n"))
	if out == "" {
		return strings.TrimSpace(text)
	}
	return out
}

// htmlQuoteMarkers start the quoted history in the HTML of the usual clients.
var htmlQuoteMarkers = []string{
	`<div class="gmail_quote`, // Gmail
	`<div id="appendonsend"`,  // Outlook (new)
	`<div id="divRplyFwdMsg"`, // Outlook
	`<div class="OutlookMessageHeader"`,
	`<hr id="stopSpelling"`,        // Outlook (old)
	`<div class="moz-cite-prefix"`, // Thunderbird
	`<blockquote type="cite"`,      // Apple Mail, Thunderbird
	`<div class="yahoo_quoted"`,    // Yahoo
}

// StripQuotedHTML cuts the quoted history off a reply's HTML at the first marker the
// usual clients put before it. The rest is left to the renderer (which closes what
// the cut left open).
func StripQuotedHTML(h string) string {
	lower := strings.ToLower(h)
	cut := len(h)
	for _, m := range htmlQuoteMarkers {
		if i := strings.Index(lower, strings.ToLower(m)); i >= 0 && i < cut {
			cut = i
		}
	}
	if cut == len(h) || strings.TrimSpace(HTMLToText(h[:cut])) == "" {
		return h
	}
	return h[:cut]
}

var (
	htmlDrop      = regexp.MustCompile(`(?is)<(script|style|head|title)\b.*?</(script|style|head|title)\s*>`)
	htmlComment   = regexp.MustCompile(`(?s)<!--.*?-->`)
	htmlBreak     = regexp.MustCompile(`(?i)<br\s*/?>`)
	htmlBlockEnd  = regexp.MustCompile(`(?i)</(p|div|h[1-6]|li|tr|table|blockquote|pre)\s*>|<(p|div|li|tr|hr)\b[^>]*>`)
	htmlTag       = regexp.MustCompile(`(?s)<[^>]*>`)
	blankLines    = regexp.MustCompile(`\n{3,}`)
	trailingSpace = regexp.MustCompile(`[ \t]+\n`)
)

// HTMLToText renders HTML as plain text, roughly: line breaks for blocks, no tags,
// entities decoded. It is the text of an HTML-only message.
func HTMLToText(h string) string {
	s := htmlDrop.ReplaceAllString(h, "")
	s = htmlComment.ReplaceAllString(s, "")
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlBlockEnd.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	s = strings.ReplaceAll(s, "\r", "")
	s = trailingSpace.ReplaceAllString(s, "\n")
	s = blankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}

// subjectPrefix matches the reply and forward prefixes of the usual languages and
// clients, with an optional counter ("Re[2]:", "AW:", "SV:", "Fwd:", "TR:", "WG:").
var subjectPrefix = regexp.MustCompile(`(?i)^\s*(re|aw|sv|vs|antw|antwort|fw|fwd|wg|tr|rv|enc|odp)\s*(\[\d+\]|\(\d+\))?\s*:\s*`)

// TicketToken matches the ticket number token of a subject: [TKT-2026-000042].
var TicketToken = regexp.MustCompile(`\[(TKT-\d{4}-\d{6,})\]`)

// NormalizeSubject removes reply and forward prefixes (Re:, RE:, Fwd:, AW:, SV:, ...,
// repeated) and ticket number tokens, and collapses spaces: what two subjects are
// compared by.
func NormalizeSubject(s string) string {
	s = TicketToken.ReplaceAllString(s, " ")
	s = cleanLine(s)
	for range 20 {
		t := subjectPrefix.ReplaceAllString(s, "")
		t = cleanLine(TicketToken.ReplaceAllString(t, " "))
		if t == s {
			break
		}
		s = t
	}
	return s
}

// SameSubject compares two subjects, prefixes and tokens ignored.
func SameSubject(a, b string) bool {
	return strings.EqualFold(NormalizeSubject(a), NormalizeSubject(b))
}

// ReplySubject is the subject of a message we send on a ticket: "Re: <subject>
// [TKT-...]", with the ticket's number token exactly once.
func ReplySubject(subject, number string) string {
	base := NormalizeSubject(subject)
	if base == "" {
		base = "Your request"
	}
	return "Re: " + base + " [" + number + "]"
}
