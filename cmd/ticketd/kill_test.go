package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// TestKillAndRestart runs ticketd as a real process, loads it from several goroutines,
// SIGKILLs it mid-load and restarts it on the same data folder. Every command the
// first process acknowledged must still be there, and the restarted projections must
// equal a rebuild of the store.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real ticketd; skipped with -short")
	}
	began := time.Now()
	bin := buildTicketd(t)
	t.Logf("built ticketd in %v", time.Since(began).Round(time.Millisecond))
	data := t.TempDir()

	first := startTicketd(t, bin, data, "first")
	acked, sent := loadAndKill(t, first, 8, 1500*time.Millisecond)
	if len(acked) == 0 {
		t.Fatal("no command was acknowledged before the kill")
	}
	t.Logf("acknowledged %d tickets, %d commands before SIGKILL (%d sent)", len(acked), ackedCommands(acked), sent)

	second := startTicketd(t, bin, data, "second")
	for id, want := range acked {
		var v projections.TicketView
		if status := second.get(t, "/v1/tickets/"+id, &v); status != http.StatusOK {
			t.Errorf("ticket %s acknowledged at version %d: GET after restart answered %d", id, want.version, status)
			continue
		}
		if v.Version < want.version {
			t.Errorf("ticket %s acknowledged at version %d is at version %d after restart", id, want.version, v.Version)
		}
	}
	// The restarted service takes writes on the recovered tickets.
	n := 0
	for id, want := range acked {
		if n++; n > 5 {
			break
		}
		var v projections.TicketView
		body := map[string]string{"body": "after the restart"}
		if status := second.post(t, "/v1/tickets/"+id+"/comments", uuid.NewString(), body, &v); status != http.StatusOK || v.Version <= want.version {
			t.Errorf("comment on %s after restart: status %d, version %d (acknowledged %d)", id, status, v.Version, want.version)
		}
	}

	// Every ticket as the restarted projections show it.
	views := second.allTickets(t)
	if len(views) < len(acked) {
		t.Errorf("restarted ticketd lists %d tickets, %d were acknowledged", len(views), len(acked))
	}
	second.stop(t)

	// A rebuild from the store, as ticketctl rebuild does it.
	ctx := t.Context()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rebuilt := projections.NewTickets()
	pos, err := projections.NewRunner(store, nil, rebuilt).Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.Count() != len(views) {
		t.Errorf("rebuild has %d tickets, the restarted ticketd %d", rebuilt.Count(), len(views))
	}
	for id, served := range views {
		at, err := time.Parse(time.RFC3339Nano, served["evaluated_at"].(string))
		if err != nil {
			t.Fatalf("ticket %s: evaluated_at: %v", id, err)
		}
		v, ok := rebuilt.Get(id, at)
		if !ok {
			t.Errorf("ticket %s is served but not in the rebuild", id)
			continue
		}
		want := jsonMap(t, v)
		delete(want, "evaluated_at")
		delete(served, "evaluated_at")
		if !reflect.DeepEqual(served, want) {
			a, _ := json.Marshal(served)
			b, _ := json.Marshal(want)
			t.Errorf("ticket %s differs:\nserved:  %s\nrebuilt: %s", id, a, b)
		}
	}
	// A kill must not break a hash chain either.
	if broken := verifyChains(t, store); len(broken) > 0 {
		t.Errorf("broken chains after the kill: %v", broken)
	}
	t.Logf("rebuilt %d events, %d tickets; whole test %v", pos, rebuilt.Count(), time.Since(began).Round(time.Millisecond))
}

// buildTicketd builds the ticketd binary once per test run (binary.go) and returns
// its path.
func buildTicketd(t *testing.T) string {
	t.Helper()
	bin, err := builtTicketd()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// ticketd is a running ticketd process.
type ticketd struct {
	name   string
	token  string
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	err    error // of Wait, once exited is closed
	logs   string
	client *http.Client
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startTicketd starts ticketd on a data folder and waits until it is healthy; the
// first start writes the admin token there, a restart reads the same one.
func startTicketd(t *testing.T, bin, data, name string) *ticketd {
	t.Helper()
	return launch(t, bin, name, data, filepath.Join(data, "admin.token"))
}

// stop sends SIGTERM and requires a clean exit.
func (d *ticketd) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s ticketd did not stop within 20s of SIGTERM", d.name)
	}
	if d.err != nil {
		t.Errorf("%s ticketd exited with %v after SIGTERM", d.name, d.err)
	}
}

// do sends a request; it returns the status, or an error of transport.
func (d *ticketd) do(method, path, key string, body, out any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, b, fmt.Errorf("malformed answer: %w", err)
		}
	}
	return resp.StatusCode, b, nil
}

func (d *ticketd) get(t *testing.T, path string, out any) int {
	t.Helper()
	status, _, err := d.do(http.MethodGet, path, "", nil, out)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return status
}

func (d *ticketd) post(t *testing.T, path, key string, body, out any) int {
	t.Helper()
	status, b, err := d.do(http.MethodPost, path, key, body, out)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	if status >= 300 {
		t.Logf("POST %s: %d %s", path, status, b)
	}
	return status
}

// allTickets fetches every ticket's detailed view, by id, as generic JSON.
func (d *ticketd) allTickets(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for offset := 0; ; {
		// The list is served by the restarted process's live projection, which is what
		// must equal a rebuild (a ticket's detail view folds its stream on each read).
		var page struct {
			Tickets []map[string]any `json:"tickets"`
			Total   int              `json:"total"`
		}
		if status := d.get(t, fmt.Sprintf("/v1/tickets?limit=1000&offset=%d", offset), &page); status != http.StatusOK {
			t.Fatalf("list: status %d", status)
		}
		for _, v := range page.Tickets {
			out[v["id"].(string)] = v
		}
		offset += len(page.Tickets)
		if len(page.Tickets) == 0 || offset >= page.Total {
			return out
		}
	}
}

// ack is what the first process acknowledged for a ticket: the highest version.
type ack struct {
	version  uint64
	commands int
}

func ackedCommands(acked map[string]ack) int {
	n := 0
	for _, a := range acked {
		n += a.commands
	}
	return n
}

// loadAndKill sends commands from workers goroutines, each on its own tickets, and
// SIGKILLs the process after loadFor. It returns what was acknowledged.
func loadAndKill(t *testing.T, d *ticketd, workers int, loadFor time.Duration) (map[string]ack, int64) {
	t.Helper()
	var (
		mu     sync.Mutex
		acked  = map[string]ack{}
		killed atomic.Bool
		sent   atomic.Int64
		wg     sync.WaitGroup
	)
	record := func(v projections.TicketView) {
		mu.Lock()
		defer mu.Unlock()
		a := acked[v.ID]
		a.version = max(a.version, v.Version)
		a.commands++
		acked[v.ID] = a
	}
	// send is one command; false stops the worker (the process is gone).
	send := func(path string, body any) (projections.TicketView, bool) {
		var v projections.TicketView
		sent.Add(1)
		status, b, err := d.do(http.MethodPost, path, uuid.NewString(), body, &v)
		switch {
		case err != nil && killed.Load():
			return v, false
		case err != nil:
			t.Errorf("POST %s before the kill: %v", path, err)
			return v, false
		case status >= 300 && killed.Load():
			return v, false
		case status >= 300:
			t.Errorf("POST %s before the kill: %d %s", path, status, b)
			return v, false
		}
		record(v)
		return v, true
	}
	script := []struct {
		path string
		body any
	}{
		{"replies", map[string]string{"body": "We are on it."}},
		{"comments", map[string]string{"body": "note"}},
		{"messages", map[string]string{"body": "Any news?"}},
		{"assign", map[string]string{"assignee": "alice"}},
		{"priority", map[string]string{"priority": "High"}},
		{"hold", map[string]string{"reason": "waiting"}},
		{"resolve", map[string]string{"resolution_details": "done"}},
		{"reopen", map[string]string{"reason": "not done"}},
		{"close", map[string]string{}},
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				v, ok := send("/v1/tickets", map[string]string{
					"subject": fmt.Sprintf("worker %d ticket %d", w, i), "raised_by": fmt.Sprintf("w%d@example.com", w),
				})
				if !ok {
					return
				}
				for _, step := range script[:1+(i+w)%len(script)] {
					if _, ok := send("/v1/tickets/"+v.ID+"/"+step.path, step.body); !ok {
						return
					}
				}
			}
		}()
	}
	time.Sleep(loadFor)
	killed.Store(true)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	var exitErr *exec.ExitError
	if !errors.As(d.err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first ticketd did not die of SIGKILL: %v", d.err)
	}
	wg.Wait()
	return acked, sent.Load()
}

func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// verifyChains checks every stream's hash chain and returns the broken streams.
func verifyChains(t *testing.T, store *jetstream.Store) []string {
	t.Helper()
	streams := map[string][]domain.Event{}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(t.Context(), from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Data)
			if err != nil {
				t.Fatalf("position %d: %v", rec.Position, err)
			}
			streams[rec.Stream] = append(streams[rec.Stream], e)
		}
		from = recs[len(recs)-1].Position + 1
	}
	var broken []string
	for name, events := range streams {
		if i, reason := domain.VerifyChain(events); i >= 0 {
			broken = append(broken, fmt.Sprintf("%s at %d: %s", name, i, reason))
		}
	}
	sort.Strings(broken)
	return broken
}
