package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
	listen   string // host:port of the embedded server's client listener; empty: a random loopback port
}

func addNATSFlags(fs *flag.FlagSet, c *natsConfig) {
	fs.StringVar(&c.creds, "nats-creds", os.Getenv("TICKETD_NATS_CREDS"), "credentials file for the external NATS (env TICKETD_NATS_CREDS)")
	fs.StringVar(&c.user, "nats-user", os.Getenv("TICKETD_NATS_USER"), "user name for the external NATS (env TICKETD_NATS_USER)")
	fs.StringVar(&c.password, "nats-password", os.Getenv("TICKETD_NATS_PASSWORD"), "password for the external NATS (env TICKETD_NATS_PASSWORD)")
	fs.StringVar(&c.auth, "nats-auth", os.Getenv("TICKETD_NATS_AUTH"),
		"users.json: the users, nkeys and subjects the embedded NATS accepts; anonymous clients are refused (env TICKETD_NATS_AUTH)")
	fs.StringVar(&c.listen, "nats-listen", os.Getenv("TICKETD_NATS_LISTEN"),
		"host:port the embedded NATS listens on for tools and services, e.g. 127.0.0.1:4222; empty: a random port on 127.0.0.1, logged at start (env TICKETD_NATS_LISTEN)")
}

// apply adds the credentials to the store's configuration: client credentials for an
// external NATS, or the embedded server's users plus ticketd's own.
func (c natsConfig) apply(storeCfg *jetstream.Config, log *slog.Logger) error {
	if storeCfg.URL != "" {
		if c.auth != "" || c.listen != "" {
			return errors.New("--nats-auth and --nats-listen configure the embedded NATS server; an external one (--nats-url) has its own configuration")
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
	var configure []func(*server.Options) error
	if c.listen != "" {
		host, port, err := net.SplitHostPort(c.listen)
		if err != nil {
			return fmt.Errorf("--nats-listen %q: %w", c.listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("--nats-listen %q: the port must be a number from 0 to 65535", c.listen)
		}
		configure = append(configure, func(o *server.Options) error {
			o.Host, o.Port = host, p
			return nil
		})
	}
	if c.auth != "" {
		users, err := natsapi.LoadNATSUsers(c.auth)
		if err != nil {
			return err
		}
		password := natsapi.RandomPassword()
		configure = append(configure, users.ConfigureServer(password))
		storeCfg.Options = append(storeCfg.Options, nats.UserInfo(natsapi.InternalUser, password))
		log.Info("embedded NATS requires authentication", "users", len(users.Users), "file", c.auth)
	}
	if len(configure) > 0 {
		storeCfg.ConfigureServer = func(o *server.Options) error {
			for _, f := range configure {
				if err := f(o); err != nil {
					return err
				}
			}
			return nil
		}
	}
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
