package email

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// newIMAPServer runs an in-memory IMAP server on loopback with one user whose INBOX
// holds the given messages (the flags of each first).
func newIMAPServer(t *testing.T, user, password string, msgs []imapMsg) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	for _, mbox := range []string{"INBOX", "Processed"} {
		if err := u.Create(mbox, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		if _, err := u.Append("INBOX", bytes.NewReader([]byte(m.raw)), &imap.AppendOptions{Flags: m.flags}); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       slogLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type imapMsg struct {
	raw   string
	flags []imap.Flag
}

// mailboxFlags lists the flags of every message of a mailbox, in order.
func mailboxFlags(t *testing.T, addr, user, password, mailbox string) [][]imap.Flag {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if data.NumMessages == 0 {
		return nil
	}
	var all imap.SeqSet
	all.AddRange(1, data.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]imap.Flag
	for _, m := range msgs {
		out = append(out, m.Flags)
	}
	return out
}

// TestIMAPPoll: unseen messages of the account's INBOX are ingested like SMTP mail,
// then marked \Seen; a refused one is flagged and left; seen ones are not touched; a
// second poll stores nothing; with move_to, processed mail is moved.
func TestIMAPPoll(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	addr := newIMAPServer(t, "support", "pw", []imapMsg{
		{raw: newMail(alice, "imap-1@customer.example", "Via IMAP", "Polled.\n")},
		{raw: string(readFixture(t, "malformed-header.eml"))},
		{raw: newMail(alice, "imap-old@customer.example", "Already read", "old"), flags: []imap.Flag{imap.FlagSeen}},
		{raw: newMail("bob@customer.example", "imap-2@customer.example", "Re: Via IMAP", "Me too.", [2]string{"In-Reply-To", "<imap-1@customer.example>"})},
	})
	t.Setenv("TEST_IMAP_PASSWORD", "pw")
	account := domain.EmailAccount{Address: support, Name: "Example Support",
		IMAP: &domain.EmailIMAP{Server: addr, Username: "support", PasswordEnv: "TEST_IMAP_PASSWORD", Security: "none"}}
	if _, err := hs.h.SaveEmailAccount(hs.ctx, account, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	p := &Poller{Ingester: hs.in, Accounts: hs.h.Catalogues(), Log: quiet}
	n, err := p.Poll(hs.ctx, account)
	if err != nil || n != 2 {
		t.Fatalf("poll: %d stored, %v", n, err)
	}
	ticketID := hs.ticketOf("imap-1@customer.example")
	if hs.ticketOf("imap-2@customer.example") != ticketID {
		t.Fatal("the IMAP reply did not thread")
	}
	if _, ok := hs.index.TicketByMessage("imap-old@customer.example"); ok {
		t.Fatal("a seen message was ingested")
	}
	rec := payloadOf[domain.EmailReceived](t, hs.events(ticketID))
	if len(rec) != 2 || rec[0].Via != "imap" || rec[0].Account != support {
		t.Fatalf("email.received %+v", rec)
	}
	flags := mailboxFlags(t, addr, "support", "pw", "INBOX")
	if len(flags) != 4 || !slices.Contains(flags[0], imap.FlagSeen) || !slices.ContainsFunc(flags[1], func(f imap.Flag) bool { return strings.EqualFold(string(f), string(FlagRejected)) }) ||
		!slices.Contains(flags[1], imap.FlagSeen) || !slices.Contains(flags[3], imap.FlagSeen) {
		t.Fatalf("flags after the poll: %v", flags)
	}
	if n, err := p.Poll(hs.ctx, account); err != nil || n != 0 {
		t.Fatalf("second poll: %d stored, %v", n, err)
	}

	// move_to: processed mail leaves the INBOX.
	addr2 := newIMAPServer(t, "sales", "pw2", []imapMsg{{raw: newMail(alice, "imap-3@customer.example", "Sales question", "?")}})
	t.Setenv("TEST_IMAP_PASSWORD_2", "pw2")
	sales := domain.EmailAccount{Address: "sales@example.com",
		IMAP: &domain.EmailIMAP{Server: addr2, Username: "sales", PasswordEnv: "TEST_IMAP_PASSWORD_2", Security: "none", MoveTo: "Processed"}}
	if _, err := hs.h.SaveEmailAccount(hs.ctx, sales, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	p.PollAll(hs.ctx)
	created := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("imap-3@customer.example")))[0]
	if created.EmailAccount != "sales@example.com" {
		t.Fatalf("email account %q", created.EmailAccount)
	}
	if inbox, processed := mailboxFlags(t, addr2, "sales", "pw2", "INBOX"), mailboxFlags(t, addr2, "sales", "pw2", "Processed"); len(inbox) != 0 || len(processed) != 1 {
		t.Fatalf("after the move: INBOX %v, Processed %v", inbox, processed)
	}
}
