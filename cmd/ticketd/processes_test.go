package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// launch starts a ticketd process with the given flags (besides --data and --http) and
// waits until it is healthy. tokenFile is the admin token to use: the first process
// of a deployment writes it to its own data folder.
func launch(t *testing.T, bin, name, data, tokenFile string, args ...string) *ticketd {
	t.Helper()
	d := spawn(t, bin, name, data, args...)
	d.waitHealthy(t, tokenFile, 30*time.Second)
	return d
}

// spawn starts a ticketd process and returns at once. The test's cleanup kills it if
// it still runs, and shows its log if the test failed.
func spawn(t *testing.T, bin, name, data string, args ...string) *ticketd {
	t.Helper()
	addr := freeAddr(t)
	logs := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	d := &ticketd{
		name: name, base: "http://" + addr, exited: make(chan struct{}), logs: logs,
		cmd:    exec.Command(bin, append([]string{"--data", data, "--http", addr}, args...)...),
		client: &http.Client{Timeout: 15 * time.Second},
	}
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.Env = append(os.Environ(), "TICKETD_NATS_URL=", "TICKETD_LOG_JSON=", "TICKETD_SQL_DRIVER=", "TICKETD_SQL_URL=")
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		logFile.Close()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs)
			t.Logf("%s ticketd log:\n%s", name, tail(string(b), 60))
		}
	})
	return d
}

// waitHealthy waits until /healthz answers, then reads the admin token.
func (d *ticketd) waitHealthy(t *testing.T, tokenFile string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if resp, err := d.client.Get(d.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-d.exited:
			b, _ := os.ReadFile(d.logs)
			t.Fatalf("%s ticketd exited at start: %v\n%s", d.name, d.err, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s ticketd not healthy after %v", d.name, within)
		}
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	d.token = strings.TrimSpace(string(token))
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logText is the process's log so far.
func (d *ticketd) logText() string {
	b, _ := os.ReadFile(d.logs)
	return string(b)
}

// position is what /healthz says the process's projections have applied.
func (d *ticketd) position() (uint64, error) {
	var h struct {
		Position    uint64  `json:"position"`
		SQLPosition *uint64 `json:"sql_position"`
	}
	status, _, err := d.do(http.MethodGet, "/healthz", "", nil, &h)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("healthz: %d", status)
	}
	if h.SQLPosition != nil { // the SQL read model's own runner
		return min(h.Position, *h.SQLPosition), err
	}
	return h.Position, err
}

// waitPosition waits until the process's projections, the SQL read model's included,
// have applied pos.
func (d *ticketd) waitPosition(t *testing.T, pos uint64, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		p, err := d.position()
		if err == nil && p >= pos {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("%s: projections at %d (%v), not %d, after %v", d.name, p, err, pos, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// command is one acknowledged HTTP command.
type command struct {
	ticket, commandID string
	version, position uint64 // of the ticket in the answer, and of the command's event
}

// send posts a command and returns the answer's status, the ticket view and the
// position header.
func (d *ticketd) send(path, key string, body any) (int, projections.TicketView, uint64, string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, d.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, projections.TicketView{}, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, projections.TicketView{}, 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, projections.TicketView{}, 0, "", err
	}
	var v projections.TicketView
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, v, 0, "", fmt.Errorf("malformed answer: %w", err)
		}
	}
	pos, _ := strconv.ParseUint(resp.Header.Get("X-Event-Position"), 10, 64)
	return resp.StatusCode, v, pos, string(raw), nil
}

// httpCommandID is the command ID ticketd derives from a request path and its
// Idempotency-Key (commands/httpapi).
func httpCommandID(path, key string) string {
	return commands.DeriveID("http-idempotency-key", path, key)
}

// outcomes counts the answers of a load by status and problem type.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(status int, body string) {
	key := strconv.Itoa(status)
	if status >= 300 {
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal([]byte(body), &p)
		key += " " + p.Type
	}
	o.mu.Lock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[key]++
	o.mu.Unlock()
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := make([]string, 0, len(o.n))
	for k := range o.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, o.n[k])
	}
	return b.String()
}

// readAllEvents reads every stored event, in order.
func readAllEvents(t *testing.T, store eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	for from := uint64(1); ; {
		recs, err := store.ReadAll(t.Context(), from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		from = recs[len(recs)-1].Position + 1
	}
}

// storeCheck is what checkStore found.
type storeCheck struct {
	events, streams, duplicates, missing int
	stale                                int // answers showing the ticket before the command
}

// checkStore checks the whole store: every stream's sequence has no gap and its hash
// chain verifies, no command ID appears twice in a stream, no event ID twice, and
// every acknowledged command is stored, once, at or before the version of the ticket
// its answer showed.
func checkStore(t *testing.T, store eventstore.Store, acked []command) storeCheck {
	t.Helper()
	all := readAllEvents(t, store)
	streams := map[string][]domain.Event{}
	ids := map[string]int{}
	var c storeCheck
	c.events = len(all)
	for _, rec := range all {
		e, err := domain.DecodeEvent(rec.Data)
		if err != nil {
			t.Fatalf("position %d: %v", rec.Position, err)
		}
		if ids[e.ID]++; ids[e.ID] == 2 {
			c.duplicates++
			t.Errorf("event %s stored twice", e.ID)
		}
		streams[rec.Stream] = append(streams[rec.Stream], e)
	}
	c.streams = len(streams)
	byCommand := map[string]map[string][]domain.Event{} // stream -> command ID -> events
	for name, events := range streams {
		for i, e := range events {
			if e.Sequence != uint64(i+1) {
				t.Errorf("stream %s: event %d has sequence %d: a gap", name, i, e.Sequence)
				break
			}
		}
		if i, reason := domain.VerifyChain(events); i >= 0 {
			t.Errorf("stream %s: chain broken at %d: %s", name, i, reason)
		}
		cmds := map[string][]domain.Event{}
		for _, e := range events {
			if e.CommandID != "" {
				cmds[e.CommandID] = append(cmds[e.CommandID], e)
			}
		}
		for id, evs := range cmds {
			if len(evs) > 1 && strings.HasPrefix(name, "ticket-") {
				c.duplicates++
				t.Errorf("stream %s: command %s stored %d times", name, id, len(evs))
			}
		}
		byCommand[name] = cmds
	}
	for _, a := range acked {
		evs := byCommand[domain.TicketStream(a.ticket)][a.commandID]
		switch {
		case len(evs) == 0:
			c.missing++
			t.Errorf("acknowledged command %s on ticket %s (version %d) is not stored", a.commandID, a.ticket, a.version)
		case a.version < evs[0].Sequence:
			// The answer shows the ticket once the command is applied: at its version
			// or later (other commands may have followed it).
			c.stale++
			t.Errorf("command %s on ticket %s stored at version %d, answered with the ticket at version %d", a.commandID, a.ticket, evs[0].Sequence, a.version)
		}
	}
	return c
}

// compareToRebuild compares each served ticket view with the same ticket folded from
// the whole store (a single-process replay), evaluated at the same instant.
func compareToRebuild(t *testing.T, who string, served map[string]map[string]any, rebuilt *projections.Tickets) int {
	t.Helper()
	diffs := 0
	for id, view := range served {
		at, err := time.Parse(time.RFC3339Nano, view["evaluated_at"].(string))
		if err != nil {
			t.Fatalf("%s: ticket %s: evaluated_at: %v", who, id, err)
		}
		v, ok := rebuilt.Get(id, at)
		if !ok {
			t.Errorf("%s serves ticket %s, the rebuild has none", who, id)
			diffs++
			continue
		}
		want := jsonMap(t, v)
		got := maps(view)
		delete(want, "evaluated_at")
		delete(got, "evaluated_at")
		if !reflect.DeepEqual(got, want) {
			diffs++
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			t.Errorf("%s: ticket %s differs from the rebuild:\nserved:  %s\nrebuilt: %s", who, id, a, b)
		}
	}
	if len(served) != rebuilt.Count() {
		t.Errorf("%s serves %d tickets, the rebuild has %d", who, len(served), rebuilt.Count())
		diffs++
	}
	return diffs
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// leaseHolderPID reads who holds a lease: the pid in the owner name
// (<hostname>/<pid>/<nonce>), 0 when nobody does.
func leaseHolderPID(t *testing.T, kv natsjs.KeyValue, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	entry, err := kv.Get(ctx, key)
	if err != nil {
		return 0
	}
	var v struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(entry.Value(), &v); err != nil {
		t.Fatalf("lease %s: %v", key, err)
	}
	parts := strings.Split(v.Owner, "/")
	if len(parts) < 3 {
		t.Fatalf("lease %s: owner %q", key, v.Owner)
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// TestSeveralProcesses runs three ticketd processes (the built binary) on one 3-node
// NATS cluster (--nats-url, --nats-replicas 3), each with its own data folder and
// HTTP port, under concurrent HTTP load on the same tickets; the process holding the
// integration forwarder's lease is SIGKILLed mid-load and restarted later.
//
// Promises checked:
//   - no lost update: every acknowledged command is stored once, at the version it
//     was acknowledged at; every stream's sequence is gap-free and its chain verifies;
//   - refusals are typed: every answer is 200/201 or a 409 problem (conflict after the
//     handler's retries, or an invalid transition), never a 500;
//   - ticket numbers never repeat across processes;
//   - every process serves, for every ticket, what a single-process replay of the store
//     gives (projections rebuilt from the store);
//   - the forwarder runs in one process at a time (its lease), another takes over
//     after the holder dies, and the integration stream gets every event once;
//   - with TICKETCORE_PG_URL, the three processes share one PostgreSQL read model, which
//     only the holder of its lease writes, and which ends equal to the replay.
func TestSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ticketd and runs three of them on a NATS cluster; skipped with -short")
	}
	began := time.Now()
	cluster := jstest.StartCluster(t)
	bin := buildTicketd(t)
	t.Logf("cluster and build ready in %v", time.Since(began).Round(time.Millisecond))

	const leaseTTL = 3 * time.Second
	args := []string{"--nats-url", cluster.URL(), "--nats-replicas", "3", "--lease-ttl", leaseTTL.String()}
	pgURL := os.Getenv("TICKETCORE_PG_URL")
	var schema string
	if pgURL != "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		schema = "ticketd_procs_" + hex.EncodeToString(b[:])
		args = append(args, "--sql-driver", "postgres", "--sql-url", pgURL, "--sql-schema", schema)
		t.Cleanup(func() { dropSchema(t, pgURL, schema) })
	} else {
		t.Log("TICKETCORE_PG_URL not set: each process keeps its own SQLite read model; the shared PostgreSQL model is not tested")
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	tokenFile := filepath.Join(dirs[0], "admin.token")
	procs := make([]*ticketd, 3)
	procs[0] = launch(t, bin, "p1", dirs[0], tokenFile, args...)
	var wg sync.WaitGroup
	for i := 1; i < 3; i++ {
		wg.Go(func() { procs[i] = launch(t, bin, fmt.Sprintf("p%d", i+1), dirs[i], tokenFile, args...) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("three processes healthy after %v", time.Since(began).Round(time.Millisecond))

	nc, err := nats.Connect(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := js.KeyValue(t.Context(), natsapi.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}

	// Tickets created through the three processes at once: numbers come from blocks
	// each process reserves with a compare-and-set.
	var (
		mu       sync.Mutex
		acked    []command
		tickets  []string
		numbers  = map[string]string{}
		answers  outcomes
		problems atomic.Int64
	)
	record := func(path, key string, v projections.TicketView, pos uint64) {
		mu.Lock()
		defer mu.Unlock()
		acked = append(acked, command{ticket: v.ID, commandID: httpCommandID(path, key), version: v.Version, position: pos})
	}
	for p := range procs {
		for w := range 2 {
			wg.Go(func() {
				for i := range 5 {
					key := fmt.Sprintf("create-%d-%d-%d", p, w, i)
					status, v, pos, body, err := procs[p].send("/v1/tickets", key, map[string]string{
						"subject": fmt.Sprintf("p%d w%d #%d", p+1, w, i), "raised_by": "customer@example.com", "priority": "Medium",
					})
					if err != nil || status != http.StatusCreated && status != http.StatusOK {
						t.Errorf("create through p%d: %d %v %s", p+1, status, err, body)
						return
					}
					record("/v1/tickets", key, v, pos)
					mu.Lock()
					tickets = append(tickets, v.ID)
					if other, dup := numbers[v.Number]; dup {
						t.Errorf("number %s given to %s and %s", v.Number, other, v.ID)
					}
					numbers[v.Number] = v.ID
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The forwarder's lease: one holder.
	holderPID := leaseHolderPID(t, leases, forwarderLease)
	holder := -1
	for i, p := range procs {
		if p.cmd.Process.Pid == holderPID {
			holder = i
		}
	}
	if holder < 0 {
		t.Fatalf("the forwarder lease is held by pid %d, none of the three", holderPID)
	}

	// The load: workers on every process send commands to random tickets among the
	// same few, so that processes race on the same streams.
	var (
		killed atomic.Bool
		stop   atomic.Bool
		sent   atomic.Int64
	)
	script := []struct {
		path string
		body func(r *rand.Rand) any
	}{
		{"comments", func(*rand.Rand) any { return map[string]string{"body": "note"} }},
		{"replies", func(*rand.Rand) any { return map[string]string{"body": "We are on it."} }},
		{"messages", func(*rand.Rand) any { return map[string]string{"body": "Any news?"} }},
		{"assign", func(r *rand.Rand) any { return map[string]string{"assignee": []string{"alice", "bob"}[r.IntN(2)]} }},
		{"priority", func(r *rand.Rand) any {
			return map[string]string{"priority": []string{"Low", "Medium", "High"}[r.IntN(3)]}
		}},
	}
	loadStart := time.Now()
	for p := range procs {
		for w := range 3 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				for i := 0; !stop.Load(); i++ {
					if killed.Load() && p == holder {
						return
					}
					ticket := tickets[r.IntN(len(tickets))]
					step := script[r.IntN(len(script))]
					path := "/v1/tickets/" + ticket + "/" + step.path
					key := fmt.Sprintf("load-%d-%d-%d", p, w, i)
					sent.Add(1)
					status, v, pos, body, err := procs[p].send(path, key, step.body(r))
					if err != nil {
						if !(killed.Load() && p == holder) {
							t.Errorf("p%d: %s: %v", p+1, path, err)
						}
						return
					}
					answers.add(status, body)
					switch status {
					case http.StatusOK:
						record(path, key, v, pos)
					case http.StatusConflict, http.StatusUnprocessableEntity:
						// a typed refusal: a conflict that outlasted the handler's
						// retries, an invalid transition, or a change to what already
						// is (a priority set twice)
					default:
						problems.Add(1)
						t.Errorf("p%d: %s: %d %s", p+1, path, status, body)
					}
				}
			})
		}
	}
	time.Sleep(1500 * time.Millisecond)
	killed.Store(true)
	killedAt := time.Now()
	if err := procs[holder].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs[holder].exited
	// Another process takes the forwarder over once the dead holder's key expires.
	var takeover time.Duration
	for {
		pid := leaseHolderPID(t, leases, forwarderLease)
		if pid != 0 && pid != holderPID {
			takeover = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > 4*leaseTTL {
			t.Fatalf("nobody took the forwarder lease over %v after its holder died", 4*leaseTTL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	loadFor := time.Since(loadStart)

	// The killed process comes back on its data folder.
	procs[holder] = launch(t, bin, fmt.Sprintf("p%d-restarted", holder+1), dirs[holder], tokenFile, args...)

	// Converge: every process applies everything stored.
	store, err := jetstream.Open(t.Context(), jetstream.Config{URL: cluster.URL(), Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	last, err := store.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	convergeStart := time.Now()
	for _, p := range procs {
		p.waitPosition(t, last, 30*time.Second)
	}
	converge := time.Since(convergeStart)

	check := checkStore(t, store, acked)
	rebuilt := projections.NewTickets()
	if _, err := projections.NewRunner(store, nil, rebuilt).Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	diffs := 0
	for _, p := range procs {
		diffs += compareToRebuild(t, p.name, p.allTickets(t), rebuilt)
	}

	// The integration stream has every event once (API token events stay inside).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tokens := 0
	for _, rec := range readAllEvents(t, store) {
		if rec.Stream == domain.APITokensStream {
			tokens++
		}
	}
	wantForwarded := uint64(check.events - tokens)
	integ, err := js.Stream(ctx, natsapi.IntegrationStream)
	if err != nil {
		t.Fatal(err)
	}
	var forwarded uint64
	for {
		info, err := integ.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		forwarded = info.State.Msgs
		if forwarded >= wantForwarded || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if forwarded != wantForwarded {
		t.Errorf("integration stream holds %d events, want %d", forwarded, wantForwarded)
	}
	// Lease holders: one per lease, ever, at a time; each process says when it starts.
	acquired := 0
	for _, p := range procs {
		acquired += strings.Count(p.logText(), `msg="lease acquired; starting the work" lease=`+forwarderLease)
	}

	sqlNote := "SQLite per process"
	if pgURL != "" {
		sqlNote = checkSharedSQL(t, procs, pgURL, schema, rebuilt, last)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("load %v: %d commands sent, %d acknowledged (%d tickets, numbers unique); answers %s",
		loadFor.Round(time.Millisecond), sent.Load(), len(acked), len(tickets), answers.String())
	t.Logf("store: %d events in %d streams, %d duplicates, %d acknowledged commands missing, %d answers older than their command; %d views differ from the replay",
		check.events, check.streams, check.duplicates, check.missing, check.stale, diffs)
	t.Logf("forwarder holder p%d SIGKILLed: another took the lease over after %v; %d lease terms in the surviving logs; %d events forwarded once",
		holder+1, takeover.Round(time.Millisecond), acquired, forwarded)
	t.Logf("processes converged on position %d within %v after the load; SQL read model: %s; whole test %v",
		last, converge.Round(time.Millisecond), sqlNote, time.Since(began).Round(time.Millisecond))
	if problems.Load() > 0 {
		t.Errorf("%d answers were neither acknowledgements nor typed refusals", problems.Load())
	}
}

// checkSharedSQL checks the PostgreSQL read model the processes share: one lease
// holder wrote it, no commit was refused as a second writer's, and its tickets are the
// replay's.
func checkSharedSQL(t *testing.T, procs []*ticketd, url, schema string, rebuilt *projections.Tickets, last uint64) string {
	t.Helper()
	ctx := t.Context()
	m, err := sqlmodel.Open(ctx, sqlmodel.Config{Driver: "postgres", URL: url, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pos int64
		err := m.Read(ctx, func(db *sql.DB) error {
			return db.QueryRowContext(ctx, `SELECT position FROM `+schema+`.projection_checkpoints`).Scan(&pos)
		})
		if err == nil && uint64(pos) >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shared SQL model at %d (%v), not %d, after 30s", pos, err, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	now := time.Now()
	views, err := m.Views(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		want, ok := rebuilt.Get(v.ID, now)
		if !ok || want.Version != v.Version || want.Status != v.Status || want.Priority != v.Priority || want.Number != v.Number {
			t.Errorf("SQL ticket %s: version %d status %s priority %s; replay: %v version %d status %s priority %s",
				v.ID, v.Version, v.Status, v.Priority, ok, want.Version, want.Status, want.Priority)
		}
	}
	if len(views) != rebuilt.Count() {
		t.Errorf("SQL model has %d tickets, the replay %d", len(views), rebuilt.Count())
	}
	refused := 0
	for _, p := range procs {
		refused += strings.Count(p.logText(), sqlmodel.ErrOtherWriter.Error())
	}
	return fmt.Sprintf("shared PostgreSQL, %d tickets equal to the replay, %d commits refused as a second writer's", len(views), refused)
}

// dropSchema removes a test's PostgreSQL schema and those its rebuilds left.
func dropSchema(t *testing.T, url, schema string) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Logf("drop schema %s: %v", schema, err)
		return
	}
	defer db.Close()
	if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
		t.Logf("drop schema %s: %v", schema, err)
	}
}
