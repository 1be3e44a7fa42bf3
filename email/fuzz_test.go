package email

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParseInbound runs the inbound parser (and the text helpers ingestion applies
// to its result) on arbitrary input: it must never panic, and what it returns must be
// storable (valid UTF-8 subject and bodies). The seed corpus is every fixture in
// testdata plus testdata/fuzz/FuzzParseInbound.
//
//	go test ./email -run '^$' -fuzz FuzzParseInbound -fuzztime 1m
func FuzzParseInbound(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := ParseInbound(raw)
		if err != nil {
			return
		}
		for name, s := range map[string]string{"subject": in.Subject, "text": in.Text, "html": in.HTML} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not valid UTF-8: %q", name, s)
			}
		}
		_ = StripQuoted(in.Text)
		_ = StripQuotedHTML(in.HTML)
		_ = NormalizeSubject(in.Subject)
		_ = automaticReason(in, Envelope{}, func(string) bool { return false }, func(string) bool { return false })
		if in.DSN != nil {
			for _, r := range in.DSN.Recipients {
				_ = r.Recipient
			}
		}
	})
}
