package jetstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/eventstore"
)

// openPipeStore opens an embedded store; configure adjusts its server, opts are the
// store's connection options.
func openPipeStore(t *testing.T, configure func(*server.Options), opts ...nats.Option) *Store {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), Options: opts}
	if configure != nil {
		cfg.ConfigureServer = func(o *server.Options) error { configure(o); return nil }
	}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.pipes == nil {
		t.Fatal("an embedded store without pipes")
	}
	return s
}

// pipeMessages is how many messages the server received on the store's pipes, and
// their client IDs.
func pipeMessages(t *testing.T, s *Store) (int64, []uint64) {
	t.Helper()
	connz, err := s.srv.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs int64
	var cids []uint64
	for _, c := range connz.Conns {
		if c.Name == "ticketcore-append" {
			msgs += c.InMsgs
			cids = append(cids, c.Cid)
		}
	}
	return msgs, cids
}

// waitPipeMessages waits until the server counts from min to max messages received
// on the open pipes (it adds a connection's count after acting on what it read, so the
// count can trail the acknowledgements for a moment) and fails the test if it does not.
func waitPipeMessages(t *testing.T, s *Store, min, max int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msgs, _ := pipeMessages(t, s)
		if msgs >= min && msgs <= max {
			return
		}
		if msgs > max || time.Now().After(deadline) {
			t.Fatalf("the server received %d messages on pipes, want %d to %d", msgs, min, max)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// appendN appends n events to stream after revision from and returns the last revision.
func appendN(t *testing.T, s *Store, stream string, from eventstore.Revision, n int) eventstore.Revision {
	t.Helper()
	rev := from
	for i := range n {
		res, err := s.Append(t.Context(), stream, rev, []eventstore.EventData{{ID: stream + "-" + strconv.Itoa(int(rev)) + "-" + strconv.Itoa(i), Type: "ticket.comment_added", Data: []byte(`{"n":1}`)}})
		if err != nil {
			t.Fatal(err)
		}
		rev = res.Revision
	}
	return rev
}

func TestAppendsGoThroughPipes(t *testing.T) {
	s := openPipeStore(t, nil)
	appendN(t, s, "ticket-1", eventstore.NoStream, 3)
	waitPipeMessages(t, s, 3, 3)
	got, err := s.ReadStream(t.Context(), "ticket-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "ticket-1-0-0" || got[2].Type != "ticket.comment_added" || string(got[1].Data) != `{"n":1}` {
		t.Fatalf("read back %+v", got)
	}
	// The expected revision travels too: a stale one is a conflict.
	_, err = s.Append(t.Context(), "ticket-1", 1, []eventstore.EventData{{ID: "late", Type: "T", Data: []byte(`{}`)}})
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append at a stale revision: %v, want ErrConflict", err)
	}
}

// TestPipesAuthenticate: a server that requires credentials takes the pipes'
// CONNECT with the store's user and password, or token.
func TestPipesAuthenticate(t *testing.T) {
	cases := map[string]struct {
		configure func(*server.Options)
		opt       nats.Option
	}{
		"user and password": {
			func(o *server.Options) { o.Users = []*server.User{{Username: "ticketd", Password: "s3cret"}} },
			nats.UserInfo("ticketd", "s3cret"),
		},
		"token": {
			func(o *server.Options) { o.Authorization = "t0ken" },
			nats.Token("t0ken"),
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := openPipeStore(t, c.configure, c.opt)
			appendN(t, s, "ticket-1", eventstore.NoStream, 2)
			waitPipeMessages(t, s, 2, 2)
		})
	}
}

// TestPipeClosedByServer: a pipe the server closed while it sat in the pool fails its
// next append at worst with ErrUnavailable (if the server read the message before
// closing, it may or may not have stored it), and the retry of the same event stores
// it once. The slots are then dialled again.
func TestPipeClosedByServer(t *testing.T) {
	s := openPipeStore(t, nil)
	var all []*pipe // dial every slot
	for pc := s.pipes.get(); pc != nil; pc = s.pipes.get() {
		all = append(all, pc)
	}
	for _, pc := range all {
		s.pipes.put(pc)
	}
	rev := appendN(t, s, "ticket-1", eventstore.NoStream, 1)
	_, cids := pipeMessages(t, s)
	for _, cid := range cids {
		if err := s.srv.DisconnectClientByID(cid); err != nil {
			t.Fatal(err)
		}
	}
	for i := range DefaultAppendConns + 1 { // every closed pipe, then a new one
		ev := eventstore.EventData{ID: "after-close-" + strconv.Itoa(i), Type: "T", Data: []byte(`{}`)}
		for attempt := 1; ; attempt++ {
			res, err := s.Append(t.Context(), "ticket-1", rev, []eventstore.EventData{ev})
			if err == nil {
				rev = res.Revision
				break
			}
			if errors.Is(err, eventstore.ErrDuplicate) { // the failed attempt was stored
				stored, err := s.ReadStream(t.Context(), "ticket-1")
				if err != nil {
					t.Fatal(err)
				}
				rev = stored[len(stored)-1].Revision
				break
			}
			if !errors.Is(err, eventstore.ErrUnavailable) || attempt == 3 {
				t.Fatalf("append %d, attempt %d: %v", i, attempt, err)
			}
		}
	}
	got, err := s.ReadStream(t.Context(), "ticket-1")
	if err != nil || len(got) != 2+DefaultAppendConns {
		t.Fatalf("read back %d events, %v; want %d", len(got), err, 2+DefaultAppendConns)
	}
	waitPipeMessages(t, s, 1, DefaultAppendConns+1) // on the new pipes
}

func TestPipeAnswers(t *testing.T) {
	s := openPipeStore(t, func(o *server.Options) { o.MaxPayload = 4096 })
	pc, err := s.pipes.dial(appendPipe)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.conn.Close()
	hdr := appendEventHeader(nil, eventstore.EventData{ID: "e-1", Type: "T"}, eventstore.NoStream)
	data := []byte(`{}`)

	if _, err := pc.request(t.Context(), "nobody.listens", hdr, data); !errors.Is(err, nats.ErrNoResponders) || pc.broken {
		t.Fatalf("publish to no stream: %v (broken %v), want ErrNoResponders on an intact pipe", err, pc.broken)
	}
	if _, err := pc.request(t.Context(), s.prefix+"ticket-1", hdr, bytes.Repeat([]byte("x"), 5000)); !errors.Is(err, nats.ErrMaxPayload) || pc.broken {
		t.Fatalf("oversized publish: %v (broken %v), want ErrMaxPayload on an intact pipe", err, pc.broken)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := pc.request(cancelled, s.prefix+"ticket-1", hdr, data); !errors.Is(err, context.Canceled) || pc.broken {
		t.Fatalf("cancelled publish: %v (broken %v), want context.Canceled on an intact pipe", err, pc.broken)
	}
	answer, err := pc.request(t.Context(), s.prefix+"ticket-1", hdr, data)
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := s.parsePubAck(answer); err != nil || seq != 1 {
		t.Fatalf("acknowledged %d, %v; want sequence 1", seq, err)
	}

	// An answer that does not come in time leaves the pipe out of step: it is broken.
	silent, err := s.nc.SubscribeSync("silent.service")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	s.nc.Flush()
	short, cancelShort := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := pc.request(short, "silent.service", hdr, data); err == nil || !pc.broken {
		t.Fatalf("unanswered publish: %v (broken %v), want an error on a broken pipe", err, pc.broken)
	}
}

func TestPipePool(t *testing.T) {
	s := openPipeStore(t, nil)
	pool := s.pipes

	// Busy slots send appends to the nats.Conn rather than make them wait.
	var taken []*pipe
	for pc := pool.get(); pc != nil; pc = pool.get() {
		taken = append(taken, pc)
	}
	if len(taken) != DefaultAppendConns {
		t.Fatalf("took %d pipes, want %d", len(taken), DefaultAppendConns)
	}
	appendN(t, s, "ticket-1", eventstore.NoStream, 1)
	for _, pc := range taken {
		pool.put(pc)
	}

	// A pipe idle for too long is replaced: the server may have closed it.
	idle := taken[0]
	idle.lastUsed = time.Now().Add(-2 * pipeIdleLimit)
	var again []*pipe
	for pc := pool.get(); pc != nil; pc = pool.get() {
		if pc == idle {
			t.Fatal("an idle pipe was handed out")
		}
		again = append(again, pc)
	}
	for _, pc := range again {
		pool.put(pc)
	}
	if _, err := idle.conn.Write([]byte("PING\r\n")); err == nil {
		t.Fatal("the idle pipe was not closed")
	}

	// A broken pipe is closed and its slot dialled again when needed.
	b := pool.get()
	b.broken = true
	pool.put(b)
	if _, err := b.conn.Write([]byte("PING\r\n")); err == nil {
		t.Fatal("the broken pipe was not closed")
	}
	appendN(t, s, "ticket-2", eventstore.NoStream, DefaultAppendConns)
}

// TestPipeLongInfo: the server's first INFO is read whole however long it is, and a
// later one longer than the read buffer is skipped.
func TestPipeLongInfo(t *testing.T) {
	long := `INFO {"server_id":"x","headers":true,"max_payload":1048576,"connect_urls":["` + strings.Repeat("a", 3*pipeReadBuffer) + `"]}` + "\r\n"
	server, client := net.Pipe()
	defer server.Close()
	done := make(chan error, 1)
	go func() {
		pc := &pipe{conn: client, r: bufio.NewReaderSize(client, pipeReadBuffer), inbox: "_INBOX.t"}
		err := pc.handshake([]byte(`{}`))
		if err == nil && pc.maxPayload != 1048576 {
			err = fmt.Errorf("max payload %d", pc.maxPayload)
		}
		if err == nil {
			var answer []byte
			answer, err = pc.readAnswer()
			if err == nil && string(answer) != "ok" {
				err = fmt.Errorf("answer %q", answer)
			}
		}
		done <- err
	}()
	r := bufio.NewReader(server)
	if _, err := server.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	for { // CONNECT, SUB, PING
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "PING\r\n" {
			break
		}
	}
	if _, err := server.Write([]byte("PONG\r\n" + long + "MSG _INBOX.t 1 2\r\nok\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReadDataGoesThroughPipe: on the embedded server, a bulk read asks for its
// batches on a pipe of its own, which it closes when done.
func TestReadDataGoesThroughPipe(t *testing.T) {
	s := openPipeStore(t, nil)
	appendN(t, s, "ticket-1", eventstore.NoStream, dataBatch+10)
	var got int
	if err := s.ReadData(t.Context(), 1, dataBatch+10, func(batch []eventstore.RecordedEvent) error {
		got += len(batch)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != dataBatch+10 {
		t.Fatalf("read %d events, want %d", got, dataBatch+10)
	}
	// The server files a connection as closed a moment after the pipe is closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		connz, err := s.srv.Connz(&server.ConnzOptions{State: server.ConnAll})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range connz.Conns {
			if c.Name == readPipe.name && c.Stop != nil && c.InMsgs == 2 && c.OutMsgs == dataBatch+10+2 {
				return // two requests, answered by every event and two ends of batch
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no closed read pipe with 2 requests and %d answers among %+v", dataBatch+12, connz.Conns)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
