package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// natsConfig is how ticketd authenticates to an external NATS, or what the embedded
// server requires of its clients.
type natsConfig struct {
	creds    string // credentials file (JWT + nkey seed) for an external NATS
	user     string // user and password for an external NATS
	password string
	auth     string // users.json for the embedded server: anonymous clients refused
}

func addNATSFlags(fs *flag.FlagSet, c *natsConfig) {
	fs.StringVar(&c.creds, "nats-creds", os.Getenv("TICKETD_NATS_CREDS"), "credentials file for the external NATS (env TICKETD_NATS_CREDS)")
	fs.StringVar(&c.user, "nats-user", os.Getenv("TICKETD_NATS_USER"), "user name for the external NATS (env TICKETD_NATS_USER)")
	fs.StringVar(&c.password, "nats-password", os.Getenv("TICKETD_NATS_PASSWORD"), "password for the external NATS (env TICKETD_NATS_PASSWORD)")
	fs.StringVar(&c.auth, "nats-auth", os.Getenv("TICKETD_NATS_AUTH"),
		"users.json: the users, nkeys and subjects the embedded NATS accepts; anonymous clients are refused (env TICKETD_NATS_AUTH)")
}

// apply adds the credentials to the store's configuration: client credentials for an
// external NATS, or the embedded server's users plus ticketd's own.
func (c natsConfig) apply(storeCfg *jetstream.Config, log *slog.Logger) error {
	if storeCfg.URL != "" {
		if c.auth != "" {
			return errors.New("--nats-auth configures the embedded NATS server; an external one (--nats-url) has its own configuration")
		}
		if c.creds != "" {
			storeCfg.Options = append(storeCfg.Options, nats.UserCredentials(c.creds))
		}
		if c.user != "" || c.password != "" {
			storeCfg.Options = append(storeCfg.Options, nats.UserInfo(c.user, c.password))
		}
		return nil
	}
	if c.creds != "" || c.user != "" || c.password != "" {
		return errors.New("--nats-creds, --nats-user and --nats-password are for an external NATS (--nats-url); the embedded server takes --nats-auth")
	}
	if c.auth == "" {
		return nil
	}
	users, err := natsapi.LoadNATSUsers(c.auth)
	if err != nil {
		return err
	}
	password := natsapi.RandomPassword()
	storeCfg.ConfigureServer = users.ConfigureServer(password)
	storeCfg.Options = append(storeCfg.Options, nats.UserInfo(natsapi.InternalUser, password))
	log.Info("embedded NATS requires authentication", "users", len(users.Users), "file", c.auth)
	return nil
}

// serveNATSCommands starts the NATS command transport (request/reply and durable
// commands), resumed with back-off like the other followers.
func serveNATSCommands(ctx, runCtx context.Context, h *commands.Handler, store *jetstream.Store, tickets *projections.Tickets, replicas int, log *slog.Logger) error {
	srv, err := natsapi.NewServer(ctx, natsapi.Config{
		Handler: h, Conn: store.Conn(), Log: log, Auth: h.Catalogues(), Replicas: replicas,
		ResolveNumber: func(number string) (string, bool) {
			v, ok := tickets.Get(number, time.Now())
			return v.ID, ok
		},
	})
	if err != nil {
		return err
	}
	go keepRunning(runCtx, "NATS commands", srv.Run, log)
	log.Info("NATS commands", "request_reply", natsapi.RequestSubjectPrefix+".<command>", "durable", natsapi.DurableSubjectPrefix+".<command>")
	return nil
}
