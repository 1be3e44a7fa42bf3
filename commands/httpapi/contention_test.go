package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// TestHundredClientsOnOneTicket has 100 clients comment on the same ticket at the same
// instant, through four API instances (four processes: a handler, read model and
// HTTP server each) sharing one JetStream store, so that the appends race on one
// stream across processes. Then every client refused with a conflict sends its
// request again with the same Idempotency-Key until it is accepted.
//
// Promises: every answer is 200, or 409 /problems/conflict (never a 500 or another
// status); every acknowledged comment is stored exactly once, and nothing else is
// (a refused attempt stores nothing); the ticket's versions are 1..n without gap or
// duplicate and its hash chain verifies; after the retries, all 100 comments are
// stored once each. Then all 100 send a comment with If-Match on the same version:
// exactly one is accepted, 99 are refused with 412 /problems/version-mismatch.
func TestHundredClientsOnOneTicket(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	const instances, clients = 10, 100
	var urls []string
	for i := range instances {
		h, err := commands.NewHandler(ctx, store, commands.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := h.SeedDefaults(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tickets := projections.NewTickets()
		runner := projections.NewRunner(store, quiet, tickets)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = runner.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
		srv := httptest.NewServer((&httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Log: quiet}).Routes())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	post := func(url, path, key string, body any, headers ...string) (int, string, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(b))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw), err
	}
	status, body, err := post(urls[0], "/v1/tickets", "create", map[string]string{"subject": "Contended", "raised_by": "c@example.com"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create: %d %v %s", status, err, body)
	}
	var created projections.TicketView
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	path := "/v1/tickets/" + created.ID + "/comments"

	// Round 1: everybody at once.
	type answer struct {
		status int
		typ    string
	}
	answers := make([]answer, clients)
	var wg sync.WaitGroup
	start := make(chan struct{})
	began := time.Now()
	for c := range clients {
		wg.Go(func() {
			<-start
			status, body, err := post(urls[c%instances], path, fmt.Sprintf("client-%d", c), map[string]string{"body": fmt.Sprintf("comment %d", c)})
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			var p struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal([]byte(body), &p)
			answers[c] = answer{status, p.Type}
		})
	}
	close(start)
	wg.Wait()
	round1 := time.Since(began)
	counts := map[string]int{}
	var accepted, refused []int
	for c, a := range answers {
		counts[fmt.Sprintf("%d %s", a.status, a.typ)]++
		switch {
		case a.status == http.StatusOK:
			accepted = append(accepted, c)
		case a.status == http.StatusConflict && a.typ == commands.ProblemConflict:
			refused = append(refused, c)
		default:
			t.Errorf("client %d: status %d %q: want 200, or 409 %s", c, a.status, a.typ, commands.ProblemConflict)
		}
	}
	comments := checkContendedStream(t, store, created.ID)
	if !sameSet(comments, accepted) {
		t.Errorf("after round 1, stored comments %v, acknowledged %v", comments, accepted)
	}

	// Round 2: the refused clients retry with the same key until accepted.
	retries := 0
	for attempt := 1; len(refused) > 0 && attempt <= 30; attempt++ {
		var again []int
		var mu sync.Mutex
		for _, c := range refused {
			wg.Go(func() {
				status, body, err := post(urls[(c+attempt)%instances], path, fmt.Sprintf("client-%d", c), map[string]string{"body": fmt.Sprintf("comment %d", c)})
				switch {
				case err != nil:
					t.Errorf("client %d: %v", c, err)
				case status == http.StatusOK:
				case status == http.StatusConflict && strings.Contains(body, commands.ProblemConflict):
					mu.Lock()
					again = append(again, c)
					mu.Unlock()
				default:
					t.Errorf("client %d retry: %d %s", c, status, body)
				}
			})
		}
		wg.Wait()
		retries += len(refused)
		refused = again
	}
	if len(refused) > 0 {
		t.Errorf("%d clients still refused after 30 rounds of retries", len(refused))
	}
	total := time.Since(began)
	comments = checkContendedStream(t, store, created.ID)
	all := make([]int, clients)
	for i := range all {
		all[i] = i
	}
	if !sameSet(comments, all) {
		t.Errorf("after the retries, stored comments %v, want each of the %d once", comments, clients)
	}
	// Round 3: everybody at once again, each with If-Match on the version all of them
	// read: exactly one may win, the others are refused with 412 version-mismatch.
	version := uint64(clients + 1)
	ifMatch := make([]answer, clients)
	for c := range clients {
		wg.Go(func() {
			status, body, err := post(urls[c%instances], path, fmt.Sprintf("if-match-%d", c),
				map[string]string{"body": fmt.Sprintf("comment %d", clients+c)}, "If-Match", fmt.Sprintf(`"%d"`, version))
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			var p struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal([]byte(body), &p)
			ifMatch[c] = answer{status, p.Type}
		})
	}
	wg.Wait()
	won, mismatched := 0, 0
	for c, a := range ifMatch {
		switch {
		case a.status == http.StatusOK:
			won++
		case a.status == http.StatusPreconditionFailed && a.typ == commands.ProblemVersionMismatch:
			mismatched++
		default:
			t.Errorf("If-Match client %d: %d %q: want 200 or 412 %s", c, a.status, a.typ, commands.ProblemVersionMismatch)
		}
	}
	if won != 1 {
		t.Errorf("%d clients won with If-Match on the same version, want exactly 1", won)
	}
	if got := len(checkContendedStream(t, store, created.ID)); got != clients+won {
		t.Errorf("%d comments stored after the If-Match round, want %d", got, clients+won)
	}

	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var summary []string
	for _, k := range keys {
		summary = append(summary, fmt.Sprintf("%s: %d", strings.TrimSpace(k), counts[k]))
	}
	t.Logf("round 1 (%d clients at once, %d instances): %s in %v", clients, instances, strings.Join(summary, ", "), round1.Round(time.Millisecond))
	t.Logf("then %d retries with the same keys; all %d comments stored once each, versions 1..%d contiguous, in %v in all",
		retries, clients, clients+1, total.Round(time.Millisecond))
	t.Logf("round 3 (If-Match on version %d, %d clients at once): %d accepted, %d refused with 412 %s", version, clients, won, mismatched, commands.ProblemVersionMismatch)
}

// checkContendedStream reads the ticket's stream, checks versions and chain, and
// returns the client numbers of its comments, failing on any stored twice.
func checkContendedStream(t *testing.T, store *jetstream.Store, ticket string) []int {
	t.Helper()
	recs, err := store.ReadStream(t.Context(), domain.TicketStream(ticket))
	if err != nil {
		t.Fatal(err)
	}
	var events []domain.Event
	seen := map[int]bool{}
	var comments []int
	for i, rec := range recs {
		e, err := domain.DecodeEvent(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Sequence != uint64(i+1) {
			t.Errorf("event %d has version %d", i+1, e.Sequence)
		}
		events = append(events, e)
		if c, ok := e.Payload.(domain.CommentAdded); ok {
			var n int
			if _, err := fmt.Sscanf(c.Body, "comment %d", &n); err != nil {
				t.Fatalf("comment body %q", c.Body)
			}
			if seen[n] {
				t.Errorf("comment of client %d stored twice", n)
			}
			seen[n] = true
			comments = append(comments, n)
		}
	}
	if i, reason := domain.VerifyChain(events); i >= 0 {
		t.Errorf("hash chain broken at %d: %s", i, reason)
	}
	return comments
}

func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]int(nil), a...)
	y := append([]int(nil), b...)
	sort.Ints(x)
	sort.Ints(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
