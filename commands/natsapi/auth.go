package natsapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// InternalUser is the NATS user ticketd itself connects as when the embedded server
// requires authentication (--nats-auth). Its password is random, made at every start
// and never written anywhere.
const InternalUser = "ticketd"

// NATSUsers is the --nats-auth file: who may connect to the embedded NATS server, and
// on which subjects each may publish and subscribe.
//
//	{"users": [
//	  {"user": "billing", "password": "$2a$11$...",
//	   "publish": ["tickets.cmd.>"], "subscribe": ["_INBOX.>"]},
//	  {"nkey": "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4",
//	   "publish": {"allow": ["tickets.cmdq.>"], "deny": ["tickets.cmdq.dead"]},
//	   "subscribe": ["tickets.events.>", "tickets.cmdq.results.>", "_INBOX.>"]}
//	]}
type NATSUsers struct {
	Users []NATSUser `json:"users"`
}

// NATSUser is one client: a user name and password (plain, or a bcrypt hash as made by
// `nats server passwd`), or an nkey (its public key; the client signs with the seed).
// A user with neither publish nor subscribe rules may publish and subscribe anywhere.
type NATSUser struct {
	User      string       `json:"user,omitempty"`
	Password  string       `json:"password,omitempty"`
	Nkey      string       `json:"nkey,omitempty"`
	Publish   *SubjectRule `json:"publish,omitempty"`
	Subscribe *SubjectRule `json:"subscribe,omitempty"`
	// AllowResponses lets the user answer requests sent to it (publish to their reply
	// subjects) without a publish rule for them.
	AllowResponses bool `json:"allow_responses,omitempty"`
}

// SubjectRule is a list of allowed subjects (wildcards allowed), or an object with
// "allow" and "deny" lists.
type SubjectRule struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// UnmarshalJSON accepts ["a.>", "b"] as well as {"allow": [...], "deny": [...]}.
func (r *SubjectRule) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		r.Deny = nil
		return json.Unmarshal(t, &r.Allow)
	}
	type plain SubjectRule
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(r))
}

// LoadNATSUsers reads and checks a --nats-auth file.
func LoadNATSUsers(path string) (*NATSUsers, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NATS users: %w", err)
	}
	var u NATSUsers
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return nil, fmt.Errorf("NATS users %s: %w", path, err)
	}
	if err := u.check(); err != nil {
		return nil, fmt.Errorf("NATS users %s: %w", path, err)
	}
	return &u, nil
}

func (u *NATSUsers) check() error {
	if len(u.Users) == 0 {
		return errors.New("no user listed")
	}
	seen := map[string]bool{InternalUser: true}
	for i, e := range u.Users {
		switch {
		case e.User != "" && e.Nkey != "":
			return fmt.Errorf("users[%d]: give a user or an nkey, not both", i)
		case e.Nkey != "":
			if !nkeys.IsValidPublicUserKey(e.Nkey) {
				return fmt.Errorf("users[%d]: %q is not a public user nkey (U...)", i, e.Nkey)
			}
			if e.Password != "" {
				return fmt.Errorf("users[%d]: an nkey user has no password", i)
			}
		case e.User != "":
			if e.Password == "" {
				return fmt.Errorf("users[%d] (%s): a password is required", i, e.User)
			}
			if strings.ContainsAny(e.User, " \t:@/") {
				return fmt.Errorf("users[%d]: user %q contains a space, ':', '@' or '/'", i, e.User)
			}
		default:
			return fmt.Errorf("users[%d]: give a user (with a password) or an nkey", i)
		}
		name := e.User + e.Nkey
		if seen[name] {
			if name == InternalUser {
				return fmt.Errorf("users[%d]: the user name %s is ticketd's own", i, InternalUser)
			}
			return fmt.Errorf("users[%d]: %s is listed twice", i, name)
		}
		seen[name] = true
	}
	return nil
}

func (e NATSUser) permissions() *server.Permissions {
	if e.Publish == nil && e.Subscribe == nil && !e.AllowResponses {
		return nil
	}
	p := &server.Permissions{}
	if e.Publish != nil {
		p.Publish = &server.SubjectPermission{Allow: e.Publish.Allow, Deny: e.Publish.Deny}
	}
	if e.Subscribe != nil {
		p.Subscribe = &server.SubjectPermission{Allow: e.Subscribe.Allow, Deny: e.Subscribe.Deny}
	}
	if e.AllowResponses {
		p.Response = &server.ResponsePermission{MaxMsgs: 1}
	}
	return p
}

// ConfigureServer returns the embedded server option hook (jetstream.Config's
// ConfigureServer) that requires authentication: the listed users and nkeys, plus
// InternalUser with the given password and no restriction. Anonymous clients are
// refused.
func (u *NATSUsers) ConfigureServer(internalPassword string) func(*server.Options) error {
	return func(o *server.Options) error {
		if err := u.check(); err != nil {
			return err
		}
		o.Users = append(o.Users, &server.User{Username: InternalUser, Password: internalPassword})
		for _, e := range u.Users {
			if e.Nkey != "" {
				o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: e.Nkey, Permissions: e.permissions()})
				continue
			}
			o.Users = append(o.Users, &server.User{Username: e.User, Password: e.Password, Permissions: e.permissions()})
		}
		o.NoAuthUser = ""
		return nil
	}
}

// RandomPassword makes a password for InternalUser.
func RandomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
