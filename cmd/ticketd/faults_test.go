package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// Fault tests of ticketd as a process (docs/reliability.md): a SIGKILL while the
// projections replay a large store, and a full disk.

// fillStore writes tickets (each created, replied to, commented on and resolved: 4
// events) into the embedded store of data, from several goroutines, and returns the
// store's last position.
func fillStore(t *testing.T, data string, tickets int) uint64 {
	t.Helper()
	ctx := t.Context()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, err := commands.NewHandler(ctx, store, commands.Options{NumberBlock: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < tickets; i += workers {
				res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
					Subject: fmt.Sprintf("history %d", i), RaisedBy: "customer@example.com", Channel: domain.ChannelAPI, Priority: "Medium"}}, commands.Meta{})
				if err != nil {
					t.Error(err)
					return
				}
				for _, cmd := range []domain.TicketCommand{
					domain.SendReply{Body: "We are looking into it."},
					domain.AddComment{Body: "internal note"},
					domain.ResolveTicket{ResolutionDetails: "fixed"},
				} {
					if _, err := h.Execute(ctx, res.TicketID, cmd, commands.Meta{}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// waitLog waits until the process's log contains s; false if it exits or within
// passes first.
func (d *ticketd) waitLog(s string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(d.logText(), s) {
			return true
		}
		select {
		case <-d.exited:
			return strings.Contains(d.logText(), s)
		case <-time.After(2 * time.Millisecond):
		}
	}
	return false
}

// sqliteCheckpoint reads the SQL read model's checkpoint from a SQLite file.
func sqliteCheckpoint(t *testing.T, path string) uint64 {
	t.Helper()
	m, err := sqlmodel.Open(t.Context(), sqlmodel.Config{Driver: "sqlite", URL: path})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Committed()
}

// rebuildFrom opens the embedded store of a stopped ticketd's data folder, verifies
// every chain and returns a rebuilt read model.
func rebuildFrom(t *testing.T, data string) (*projections.Tickets, uint64) {
	t.Helper()
	store, err := jetstream.Open(t.Context(), jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if broken := verifyChains(t, store); len(broken) > 0 {
		t.Errorf("broken chains: %v", broken)
	}
	rebuilt := projections.NewTickets()
	pos, err := projections.NewRunner(store, nil, rebuilt).Rebuild(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rebuilt, pos
}

// TestKillDuringCatchUp SIGKILLs ticketd while its SQLite read model catches up on a
// large store at start (it commits its rows with a checkpoint every 16 384 events of a
// catch-up), once it has committed part of it, then restarts it.
//
// Promises: the restart completes; the restarted in-memory read model equals a rebuild
// of the store; the SQLite read model resumes from the checkpoint the kill left (its
// rows and checkpoint were committed together) and ends at the store's last position
// with the rebuild's tickets; no chain is broken.
func TestKillDuringCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real ticketd; skipped with -short")
	}
	began := time.Now()
	bin := buildTicketd(t)
	data := t.TempDir()
	tickets := 6000 // 24 000 events: more than one commit of a catch-up
	if long {
		tickets = 25000 // 100 000 events
	}
	last := fillStore(t, data, tickets)
	t.Logf("store of %d events written in %v", last, time.Since(began).Round(time.Millisecond))

	sqlFile := filepath.Join(t.TempDir(), "readmodel.sqlite")
	victim := spawn(t, bin, "victim", data, "--sql-url", sqlFile)
	if !victim.waitLog(`msg="SQL read model opened"`, 30*time.Second) {
		t.Fatal("victim: the SQL read model did not open")
	}
	opened := time.Now()
	for sqliteCheckpoint(t, sqlFile) == 0 {
		if time.Since(opened) > time.Minute {
			t.Fatal("victim: the SQL read model committed nothing in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killedAfter := time.Since(opened)
	atKill := sqliteCheckpoint(t, sqlFile)
	if atKill >= last {
		t.Errorf("the SQL read model had caught up (%d of %d) when it was killed: the kill mid-catch-up is not tested", atKill, last)
	}

	restartBegan := time.Now()
	restarted := launch(t, bin, "restarted", data, filepath.Join(data, "admin.token"), "--sql-url", sqlFile)
	restarted.waitPosition(t, last, 60*time.Second)
	restartTook := time.Since(restartBegan)
	views := restarted.allTickets(t)
	restarted.stop(t)

	rebuilt, pos := rebuildFrom(t, data)
	diffs := compareToRebuild(t, "restarted", views, rebuilt)
	after := sqliteCheckpoint(t, sqlFile)
	if after != pos {
		t.Errorf("SQL read model checkpoint %d after the restart, store at %d", after, pos)
	}
	m, err := sqlmodel.Open(t.Context(), sqlmodel.Config{Driver: "sqlite", URL: sqlFile})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	now := time.Now()
	rows, err := m.Views(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	sqlDiffs := 0
	for _, v := range rows {
		want, ok := rebuilt.Get(v.ID, now)
		if !ok || want.Version != v.Version || want.Status != v.Status || want.Number != v.Number {
			sqlDiffs++
			t.Errorf("SQL ticket %s: version %d status %s; rebuild: %v version %d status %s", v.ID, v.Version, v.Status, ok, want.Version, want.Status)
		}
	}
	if len(rows) != rebuilt.Count() {
		t.Errorf("SQL read model has %d tickets, the rebuild %d", len(rows), rebuilt.Count())
	}
	t.Logf("SIGKILL %v after the SQL read model opened, its checkpoint left at %d of %d events; restart caught up in %v; %d views and %d SQL rows differ from the rebuild; whole test %v",
		killedAfter.Round(time.Millisecond), atKill, last, restartTook.Round(time.Millisecond), diffs, sqlDiffs, time.Since(began).Round(time.Millisecond))
}

// fill sends comments with large bodies until ticketd refuses one with 503, and
// returns the acknowledged commands and the refusal. Every answer must be 200 or a 503
// /problems/unavailable. A new ticket takes the comments every ten, so that no
// ticket's history (read back for every answer) grows large.
func fill(t *testing.T, d *ticketd, bodySize, max int) ([]command, string) {
	t.Helper()
	body := strings.Repeat("disk space ", bodySize/11+1)[:bodySize]
	var acked []command
	var ticket string
	for i := range max {
		if i%10 == 0 {
			key := uuid.NewString()
			status, v, pos, raw, err := d.send("/v1/tickets", key, map[string]string{"subject": "Disk", "raised_by": "c@example.com"})
			switch {
			case err != nil:
				t.Fatalf("create %d: %v", i, err)
			case status == http.StatusCreated:
				ticket = v.ID
				acked = append(acked, command{ticket: ticket, commandID: httpCommandID("/v1/tickets", key), version: v.Version, position: pos})
			case status == http.StatusServiceUnavailable && strings.Contains(raw, commands.ProblemUnavailable):
				return acked, raw
			default:
				t.Fatalf("create %d: %d %s: want 201 or 503 %s", i, status, raw, commands.ProblemUnavailable)
			}
		}
		path := "/v1/tickets/" + ticket + "/comments"
		key := uuid.NewString()
		status, v, pos, raw, err := d.send(path, key, map[string]string{"body": body})
		if err != nil {
			t.Fatalf("comment %d: %v", i, err)
		}
		switch {
		case status == http.StatusOK:
			acked = append(acked, command{ticket: ticket, commandID: httpCommandID(path, key), version: v.Version, position: pos})
		case status == http.StatusServiceUnavailable && strings.Contains(raw, commands.ProblemUnavailable):
			return acked, raw
		default:
			t.Fatalf("comment %d: %d %s: want 200 or 503 %s", i, status, raw, commands.ProblemUnavailable)
		}
	}
	t.Fatalf("%d comments of %d bytes accepted: the store never filled up", max, bodySize)
	return nil, ""
}

// createTicket creates a ticket through d.
func createTicket(t *testing.T, d *ticketd) projections.TicketView {
	t.Helper()
	status, v, _, raw, err := d.send("/v1/tickets", uuid.NewString(), map[string]string{"subject": "Disk", "raised_by": "c@example.com"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create: %d %v %s", status, err, raw)
	}
	return v
}

// ticketVersion is the version of a ticket as d serves it.
func ticketVersion(t *testing.T, d *ticketd, id string) uint64 {
	t.Helper()
	var v projections.TicketView
	if status := d.get(t, "/v1/tickets/"+id, &v); status != http.StatusOK {
		t.Fatalf("GET ticket: %d", status)
	}
	return v.Version
}

// TestStorageLimit runs ticketd with a small JetStream storage cap
// (--nats-max-store 2M), as on a small disk, and fills it.
//
// Promises: when the store is full, commands are refused with 503
// /problems/unavailable (never a 500) and nothing half-written remains; reads keep
// working; after a restart with a larger cap, ticketd accepts commands again, every
// acknowledged command is there once, every chain verifies and the read model equals
// a rebuild.
func TestStorageLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real ticketd; skipped with -short")
	}
	bin := buildTicketd(t)
	data := t.TempDir()
	token := filepath.Join(data, "admin.token")
	d := launch(t, bin, "small", data, token, "--nats-max-store", "2M")
	ticket := createTicket(t, d)
	began := time.Now()
	acked, refusal := fill(t, d, 16<<10, 1000)
	fullAfter := time.Since(began)
	// Refused again, still typed; reads still answer.
	status, _, _, raw, err := d.send("/v1/tickets/"+ticket.ID+"/comments", uuid.NewString(), map[string]string{"body": "small"})
	if err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("a small comment on a full store: %d %v %s", status, err, raw)
	}
	if v := ticketVersion(t, d, ticket.ID); v != 1 {
		t.Errorf("the first ticket, never commented on, is at version %d", v)
	}
	d.stop(t)

	// More space: a larger cap.
	d = launch(t, bin, "larger", data, token, "--nats-max-store", "64M")
	check, diffs := checkRecovered(t, d, data, ticket.ID, acked)
	t.Logf("2 MiB cap: %d commands (comments of 16 KiB) acknowledged in %v, then refused with %s; after a restart with 64 MiB: accepted again; store %d events, %d duplicates, %d acknowledged missing; %d views differ from the rebuild",
		len(acked), fullAfter.Round(time.Millisecond), refusal, check.events, check.duplicates, check.missing, diffs)
}

// TestDiskFull runs ticketd with its data folder on a 16 MiB tmpfs (mount needs root;
// the test is skipped with a message otherwise).
//
// Promises: (1) when the JetStream reservation of the disk is used up (NATS reserves
// 75% of the free space at start), commands are refused with 503 and ticketd stays up;
// once space is freed (the integration stream, which may be lost, is purged) it
// accepts commands again, without a restart. (2) When another process fills the disk
// itself, the write that fails disables JetStream in the embedded server: commands get
// 503 (never 500); once the space is back and ticketd restarted, it accepts commands
// again. In both, every acknowledged command is stored once and every chain verifies.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real ticketd; skipped with -short")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s; TestStorageLimit covers a full store without one", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	began := time.Now()
	bin := buildTicketd(t)
	data := filepath.Join(dir, "data")
	token := filepath.Join(data, "admin.token")
	// The SQL read model lives elsewhere: this test is about the event store.
	sqlFile := filepath.Join(t.TempDir(), "readmodel.sqlite")
	d := launch(t, bin, "tmpfs", data, token, "--sql-url", sqlFile)
	ticket := createTicket(t, d)
	acked, refusal := fill(t, d, 64<<10, 1000)
	t.Logf("%v phase 1: %d commands (comments of 64 KiB) acknowledged, then %s", time.Since(began), len(acked), refusal)

	// Free space: purge the integration stream through the embedded server.
	nc, err := nats.Connect(logNATSURL(t, d))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := natsjs.New(nc)
	integ, err := js.Stream(t.Context(), natsapi.IntegrationStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := integ.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	status, v, pos, raw, err := d.send("/v1/tickets/"+ticket.ID+"/comments", "after-purge", map[string]string{"body": "space freed"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("comment after the purge: %d %v %s", status, err, raw)
	}
	acked = append(acked, command{ticket: ticket.ID, commandID: httpCommandID("/v1/tickets/"+ticket.ID+"/comments", "after-purge"), version: v.Version, position: pos})
	t.Log("phase 1: after purging the integration stream, commands are accepted again without a restart")

	// Phase 2: something else fills the disk.
	junk := filepath.Join(dir, "junk")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+junk, "bs=64k").CombinedOutput(); err == nil {
		t.Fatalf("dd filled a 16 MiB tmpfs without error?\n%s", out)
	}
	more, refusal2 := fill(t, d, 64<<10, 1000)
	acked = append(acked, more...)
	t.Logf("%v phase 2: disk full: %d more commands acknowledged, then %s", time.Since(began), len(more), refusal2)
	// Health still answers; the logs say why.
	if _, err := d.position(); err != nil {
		t.Errorf("healthz on a full disk: %v", err)
	}
	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	// The embedded server's own error reaches ticketd's log.
	disabled := strings.Contains(d.logText(), "no space left on device")
	if !disabled {
		t.Errorf("the log does not say that the disk is full:\n%s", tail(d.logText(), 15))
	}
	d.stop(t)
	d = launch(t, bin, "tmpfs-restarted", data, token, "--sql-url", sqlFile)
	t.Logf("%v restarted", time.Since(began))
	check, diffs := checkRecovered(t, d, data, ticket.ID, acked)
	t.Logf("phase 2: after removing the file and restarting, commands accepted again (the log named the full disk: %v); store %d events, %d duplicates, %d acknowledged missing; %d views differ from the rebuild",
		disabled, check.events, check.duplicates, check.missing, diffs)
}

// logNATSURL is the embedded server's URL ticketd logged at start.
func logNATSURL(t *testing.T, d *ticketd) string {
	t.Helper()
	for _, line := range strings.Split(d.logText(), "\n") {
		if i := strings.Index(line, "nats_url="); i >= 0 {
			return strings.Fields(line[i+len("nats_url="):])[0]
		}
	}
	t.Fatal("ticketd logged no nats_url")
	return ""
}

// long is true with TICKETCORE_LONG=1: larger stores and loads.
var long = os.Getenv("TICKETCORE_LONG") == "1"

// checkRecovered is what both disk-full tests check once space is back: a command is
// accepted again, then, with ticketd stopped, every acknowledged command is in the
// store once and the views it served equal a rebuild.
func checkRecovered(t *testing.T, d *ticketd, data, ticketID string, acked []command) (storeCheck, int) {
	t.Helper()
	status, _, _, raw, err := d.send("/v1/tickets/"+ticketID+"/comments", uuid.NewString(), map[string]string{"body": "space is back"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("comment after the space came back: %d %v %s", status, err, raw)
	}
	views := d.allTickets(t)
	d.stop(t)
	store, err := jetstream.Open(context.Background(), jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	check := checkStore(t, store, acked)
	store.Close()
	rebuilt, _ := rebuildFrom(t, data)
	return check, compareToRebuild(t, "after the restart", views, rebuilt)
}
