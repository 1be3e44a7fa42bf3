package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
)

// startServer runs the API as ticketd wires it (cmd/ticketd/main.go run): embedded
// JetStream store, handler with seeded defaults, ticket projection and catalogue
// follower caught up and then live, HTTP routes.
func startServer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(t.TempDir(), "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	h, err := commands.NewHandler(ctx, store, commands.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	tickets := projections.NewTickets()
	// As in ticketd: reference data written through the API reaches the handler's catalogues.
	runner := projections.NewRunner(store, log, tickets, projections.Follower{Label: "catalogues", Fold: func(e domain.Event, _ uint64) { h.Catalogues().Apply(e) }})
	if _, err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Log: log}
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
	})
	return srv.URL
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs the CLI in-process.
func ctl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// ok runs the CLI and requires exit code 0.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := ctl(t, args...)
	if r.code != 0 {
		t.Fatalf("ticketctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs the CLI and requires exit code code and stderr containing each want.
func fails(t *testing.T, code int, want []string, args ...string) result {
	t.Helper()
	r := ctl(t, args...)
	if r.code != code {
		t.Fatalf("ticketctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("ticketctl %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r.stderr)
		}
	}
	return r
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

func TestTicketCommands(t *testing.T) {
	url := startServer(t)
	s := func(args ...string) []string { return append([]string{"--server", url, "--actor", "alice"}, args...) }

	created := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Printer on fire",
		"--raised-by", "jane@acme.example.com", "--description", "It smokes.", "--priority", "High",
		"--customer", "Acme", "--company", "Acme", "--channel", "email", "--idempotency-key", "create-1")...))
	if created.ID == "" || created.Number == "" || created.Status != domain.StatusOpen || created.Priority != "High" ||
		created.Customer != "Acme" || created.Channel != domain.ChannelEmail || created.Version == 0 {
		t.Fatalf("created ticket: %+v", created)
	}
	// A retried create with the same key is the same ticket, not a second one.
	again := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Printer on fire",
		"--raised-by", "jane@acme.example.com", "--description", "It smokes.", "--priority", "High",
		"--customer", "Acme", "--company", "Acme", "--channel", "email", "--idempotency-key", "create-1")...))
	if again.ID != created.ID {
		t.Fatalf("retried create made ticket %s, first %s", again.ID, created.ID)
	}

	// Global flags after the command, ID before or after the flags.
	replied := decode[projections.TicketView](t, ok(t, "reply", created.ID, "--server", url, "--actor", "bob", "--body", "Use the extinguisher."))
	if replied.Status != domain.StatusReplied || replied.Replies != 1 || len(replied.Thread) != 2 || replied.Thread[1].Actor != "bob" {
		t.Fatalf("after reply: status %s, replies %d, thread %+v", replied.Status, replied.Replies, replied.Thread)
	}
	ok(t, s("comment", "--body", "checked the logs", created.Number)...) // by number
	ok(t, s("assign", created.ID, "carol")...)
	msg := decode[projections.TicketView](t, ok(t, s("message", created.ID, "--body", "Still smoking", "--channel", "email")...))
	if msg.Status != domain.StatusOpen || msg.CustomerMessages != 2 { // the opening message counts
		t.Fatalf("after customer message: %+v", msg)
	}
	ok(t, s("priority", created.ID, "Low")...)
	ok(t, s("hold", created.ID, "--reason", "waiting for the fire brigade")...)
	resolved := decode[projections.TicketView](t, ok(t, s("resolve", created.ID, "--details", "fire out")...))
	if resolved.Status != domain.StatusResolved || resolved.Resolution != "fire out" || resolved.Priority != "Low" ||
		len(resolved.Assignees) != 1 || len(resolved.Comments) != 1 {
		t.Fatalf("after resolve: %+v", resolved)
	}

	shown := decode[projections.TicketView](t, ok(t, s("show", created.ID)...))
	if shown.Version != resolved.Version || shown.Status != domain.StatusResolved {
		t.Fatalf("show: version %d status %s, want %d Resolved", shown.Version, shown.Status, resolved.Version)
	}
	asOf := decode[projections.TicketView](t, ok(t, s("show", created.ID, "--as-of", created.UpdatedAt.Format("2006-01-02T15:04:05.999999999Z07:00"))...))
	if asOf.Status != domain.StatusOpen || asOf.Replies != 0 {
		t.Fatalf("show --as-of creation: status %s, replies %d", asOf.Status, asOf.Replies)
	}
	table := ok(t, s("show", created.Number, "-o", "table")...)
	for _, w := range []string{created.Number, "Resolved", "THREAD", "COMMENTS", "carol"} {
		if !strings.Contains(table, w) {
			t.Errorf("show -o table lacks %q:\n%s", w, table)
		}
	}
	events := decode[struct {
		Events []domain.Event `json:"events"`
	}](t, ok(t, s("events", created.ID)...))
	if uint64(len(events.Events)) != resolved.Version {
		t.Fatalf("events: %d, ticket version %d", len(events.Events), resolved.Version)
	}

	second := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Login fails", "--raised-by", "li@globex.example.com")...))
	page := decode[projections.Page](t, ok(t, s("list")...))
	if page.Total != 2 || len(page.Tickets) != 2 {
		t.Fatalf("list: %+v", page)
	}
	page = decode[projections.Page](t, ok(t, s("list", "--status", "Open", "--limit", "10")...))
	if page.Total != 1 || page.Tickets[0].ID != second.ID {
		t.Fatalf("list --status Open: %+v", page)
	}
	page = decode[projections.Page](t, ok(t, s("list", "--all", "--limit", "1", "--newest")...))
	if page.Total != 2 || len(page.Tickets) != 2 || page.Tickets[0].ID != second.ID {
		t.Fatalf("list --all --limit 1 --newest: %+v", page)
	}
	table = ok(t, s("list", "-o", "table")...)
	if !strings.Contains(table, "NUMBER") || !strings.Contains(table, created.Number) || !strings.Contains(table, second.Number) ||
		!strings.Contains(table, "2 of 2 ticket(s)") {
		t.Errorf("list -o table:\n%s", table)
	}

	// API errors: exit 1, "error: <title>: <detail>", then the field errors.
	fails(t, 1, []string{"error: Validation failed: ", "  subject: is required", "  raised_by: "},
		s("create", "--raised-by", "not-an-email")...)
	fails(t, 1, []string{"error: Invalid transition: ", "cannot reopen a ticket that is Open"}, s("reopen", second.ID)...)
	fails(t, 1, []string{"error: Not found: "}, s("show", "0b8a3c52-5a64-4bde-8f55-111111111111")...)
	fails(t, 1, []string{"error: Not found: "}, s("show", created.ID, "--as-of", "2000-01-01T00:00:00Z")...)
	fails(t, 1, []string{"error: Validation failed: ", "  status: "}, s("list", "--status", "Bogus")...)
	fails(t, 1, []string{"error: Precondition failed: "}, s("comment", second.ID, "--body", "x", "--if-match", "99")...)
	fails(t, 1, []string{"error: "}, "--server", "http://127.0.0.1:1", "list")

	// Usage errors: exit 2.
	fails(t, 2, []string{"expected 1 argument(s)", "usage: ticketctl reply"}, s("reply", "--body", "x")...)
	fails(t, 2, []string{"unexpected argument"}, s("priority", created.ID, "High", "extra")...)
	fails(t, 2, []string{"unknown command"}, s("frobnicate")...)
	fails(t, 2, []string{"flag provided but not defined"}, s("reply", created.ID, "--bogus")...)
	fails(t, 2, []string{"unknown output format"}, s("list", "-o", "yaml")...)
	fails(t, 2, []string{"not an http(s) URL"}, "--server", "ftp://x", "list")
	if r := ctl(t, "help"); r.code != 0 || !strings.Contains(r.stdout, "scenario") {
		t.Errorf("help: exit %d\n%s", r.code, r.stdout)
	}
	if r := ctl(t); r.code != 2 {
		t.Errorf("no command: exit %d", r.code)
	}
}

func TestReferenceCommands(t *testing.T) {
	url := startServer(t)
	s := func(args ...string) []string { return append([]string{"--server", url}, args...) }

	ok(t, s("types", "add", "Incident", "--description", "something is broken")...)
	ok(t, s("priorities", "add", "Urgent")...)
	if out := ok(t, s("types", "-o", "table")...); !strings.Contains(out, "Incident") || !strings.Contains(out, "something is broken") {
		t.Errorf("types -o table:\n%s", out)
	}
	prios := decode[[]domain.NamedEntry](t, ok(t, s("priorities")...))
	if len(prios) != 4 || prios[3].Name != "Urgent" {
		t.Errorf("priorities: %+v", prios)
	}
	fails(t, 1, []string{"error: "}, s("types", "add", "Incident")...)
	ok(t, s("types", "add", "Question", "--description", "how do I")...)
	ok(t, s("types", "update", "Question", "--new-name", "FAQ")...)
	types := decode[[]domain.NamedEntry](t, ok(t, s("types")...))
	if len(types) != 2 || types[1] != (domain.NamedEntry{Name: "FAQ", Description: "how do I"}) {
		t.Errorf("types after a rename: %+v", types)
	}
	if out := ok(t, s("types", "remove", "FAQ")...); !strings.Contains(out, `"removed": "FAQ"`) {
		t.Errorf("types remove: %s", out)
	}

	settings := decode[domain.SupportSettings](t, ok(t, s("settings", "--allow-sla-reset=true", "--auto-close-days", "3")...))
	if !settings.AllowSLAReset || settings.AutoCloseDays != 3 {
		t.Errorf("settings: %+v", settings)
	}
	settings = decode[domain.SupportSettings](t, ok(t, s("settings", "--allow-sla-reset=false")...))
	if settings.AllowSLAReset || settings.AutoCloseDays != 3 {
		t.Errorf("settings after a partial change: %+v", settings)
	}

	def := projtest.SLADefinitions()[1]
	b, _ := json.Marshal(def)
	file := filepath.Join(t.TempDir(), "sla.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, s("sla", "save", file)...)
	if out := ok(t, s("sla", "list", "-o", "table")...); !strings.Contains(out, def.Name) || !strings.Contains(out, "America/New_York") {
		t.Errorf("sla list -o table:\n%s", out)
	}
	if err := os.WriteFile(file, []byte(`{"name": "Broken", "priorities": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, 1, []string{"error: Validation failed: ", "  priorities: "}, s("sla", "save", file)...)

	v := decode[projections.TicketView](t, ok(t, s("create", "--subject", "x", "--raised-by", "a@b.example.com", "--type", "Incident", "--priority", "Urgent")...))
	if v.SLA == nil || *v.SLA != def.Name || v.ResponseBy == nil || v.TicketType != "Incident" {
		t.Fatalf("ticket under the saved SLA: %+v", v)
	}
	fails(t, 1, []string{"error: Invalid transition: "}, s("reset-sla", v.ID, "--reason", "new scope")...)
	ok(t, s("settings", "--allow-sla-reset")...)
	ok(t, s("reset-sla", v.ID, "--reason", "new scope")...)
}

// acceptanceFiles are the shared scenario files.
func acceptanceFiles(t *testing.T) []string {
	files, err := filepath.Glob("../../../shared/acceptance/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no acceptance scenario found (%v)", err)
	}
	return files
}

func TestScenarioRun(t *testing.T) {
	files := acceptanceFiles(t)
	out := ok(t, append([]string{"scenario", "run"}, files...)...)
	for _, f := range files {
		if !strings.Contains(out, "ok    "+f) {
			t.Errorf("no ok line for %s:\n%s", f, out)
		}
	}

	// A copy whose first expectation is wrong must fail, naming the mismatch.
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	step := -1
	for i, st := range doc["steps"].([]any) {
		if st.(map[string]any)["action"] == "expect" {
			st.(map[string]any)["values"].(map[string]any)["status"] = "Teleported"
			step = i + 1
			break
		}
	}
	if step < 0 {
		t.Fatalf("%s has no expect step", files[0])
	}
	wrong := filepath.Join(t.TempDir(), "wrong.json")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(wrong, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := ctl(t, "scenario", "run", files[0], wrong)
	if r.code != 1 {
		t.Fatalf("wrong scenario: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{"ok    " + files[0], "FAIL  " + wrong, "status: expected \"Teleported\"", "1 of 2 scenario file(s) passed"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "mismatch: step "+itoa(step)+",") {
		t.Errorf("output does not name step %d:\n%s", step, r.stdout)
	}

	r = ctl(t, "scenario", "run", "-o", "json", wrong)
	results := decode[[]scenarioResult](t, r.stdout)
	if r.code != 1 || len(results) != 1 || results[0].OK || len(results[0].Mismatches) == 0 || results[0].Mismatches[0].Field != "status" {
		t.Errorf("scenario run -o json: exit %d, %+v", r.code, results)
	}
	fails(t, 1, nil, "scenario", "run", filepath.Join(t.TempDir(), "missing.json"))
	fails(t, 2, []string{"needs at least one FILE"}, "scenario", "run")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestRebuildAndVerify generates a history into a data folder laid out as ticketd's,
// rebuilds and verifies it with the CLI, then breaks one chain and verifies again.
func TestRebuildAndVerify(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	cfg := jetstream.Config{DataDir: filepath.Join(data, "jetstream")}
	store, err := jetstream.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(1, 2)), 25)
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := stats.TicketIDs[3]
	events, err := h.TicketEvents(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	report := decode[rebuildReport](t, ok(t, "rebuild", "--data", data, "-o", "json"))
	if report.Events != last || report.Position != last || report.Tickets != stats.Tickets || report.EventsPerSecond <= 0 {
		t.Fatalf("rebuild report %+v; store has %d events, %d tickets", report, last, stats.Tickets)
	}
	if out := ok(t, "rebuild", "--data", data); !strings.Contains(out, "events/s") {
		t.Errorf("rebuild text output: %s", out)
	}
	if out := ok(t, "verify", "--data", data); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("verify: %s", out)
	}
	fails(t, 1, []string{"no event store"}, "rebuild", "--data", t.TempDir())
	fails(t, 2, []string{"exactly one of --data"}, "verify")

	// Append to the victim's stream an event that does not chain to the previous one.
	store, err = jetstream.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stream := domain.TicketStream(victim)
	forged, err := domain.NewEvents(stream, uint64(len(events)), "not-the-previous-hash",
		domain.Metadata{CommandID: "forged", Actor: "mallory", At: clock.Now()},
		func(int) string { return "0b8a3c52-5a64-4bde-8f55-222222222222" },
		[]domain.Payload{domain.CommentAdded{CommentID: "c", Body: "forged"}})
	if err != nil {
		t.Fatal(err)
	}
	data0, _ := forged[0].Encode()
	res, err := store.Append(ctx, stream, eventstore.AnyRevision, []eventstore.EventData{{ID: forged[0].ID, Type: forged[0].Type, Data: data0}})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	r := ctl(t, "verify", "--data", data)
	if r.code != 1 || !strings.Contains(r.stdout, "BROKEN "+stream+": event "+itoa(len(events))) ||
		!strings.Contains(r.stdout, "prev_hash") || !strings.Contains(r.stdout, "FAILED: 1 of") {
		t.Fatalf("verify of a broken chain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	vr := decode[verifyReport](t, ctl(t, "verify", "--data", data, "-o", "json").stdout)
	if vr.OK || len(vr.Broken) != 1 || vr.Broken[0].Stream != stream || vr.Broken[0].Position != res.LastPosition {
		t.Fatalf("verify -o json: %+v (forged at %d)", vr, res.LastPosition)
	}
}
