package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ticketcore/ticketcore/domain"
)

func cmdTypes(ctx context.Context, e *env, args []string) error {
	return catalogue(ctx, e, "types", "/v1/ticket-types", args)
}

func cmdPriorities(ctx context.Context, e *env, args []string) error {
	return catalogue(ctx, e, "priorities", "/v1/ticket-priorities", args)
}

// catalogue lists a catalogue (no argument) or changes it (add, update, remove).
func catalogue(ctx context.Context, e *env, name, path string, args []string) error {
	fs := e.flags(name)
	description := fs.String("description", "", "description (add, update)")
	newName := fs.String("new-name", "", "new name (update)")
	pos, err := e.parse(fs, args, 0, 2)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		resp, err := e.call(ctx, request{method: http.MethodGet, path: path})
		if err != nil {
			return err
		}
		if !e.table() {
			return e.printJSON(resp.body)
		}
		var entries []domain.NamedEntry
		if err := json.Unmarshal(resp.body, &entries); err != nil {
			return fmt.Errorf("malformed catalogue: %w", err)
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tDESCRIPTION")
		for _, en := range entries {
			fmt.Fprintf(w, "%s\t%s\n", en.Name, en.Description)
		}
		return w.Flush()
	}
	if len(pos) != 2 {
		return usagef("%s %s needs a NAME", name, pos[0])
	}
	entry := pos[1]
	var r request
	switch pos[0] {
	case "add":
		r = request{method: http.MethodPost, path: path, body: map[string]string{"name": entry, "description": *description}}
	case "update":
		body := map[string]string{"description": *description}
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "description" })
		if !given {
			// An update replaces the description: keep the current one.
			var entries []domain.NamedEntry
			if err := e.getJSON(ctx, request{method: http.MethodGet, path: path}, &entries); err != nil {
				return err
			}
			for _, en := range entries {
				if en.Name == entry {
					body["description"] = en.Description
				}
			}
		}
		if *newName != "" {
			body["new_name"] = *newName
		}
		r = request{method: http.MethodPatch, path: path + "/" + url.PathEscape(entry), body: body}
	case "remove":
		r = request{method: http.MethodDelete, path: path + "/" + url.PathEscape(entry)}
	default:
		return usagef("unknown %s action %q: use add, update or remove", name, pos[0])
	}
	resp, err := e.call(ctx, r)
	if err != nil {
		return err
	}
	if resp.status == http.StatusNoContent {
		return e.printValue(map[string]string{"removed": entry})
	}
	return e.printJSON(resp.body)
}

func cmdSLA(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sla")
	pos, err := e.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			return usagef("sla list takes no argument")
		}
		resp, err := e.call(ctx, request{method: http.MethodGet, path: "/v1/slas"})
		if err != nil {
			return err
		}
		if !e.table() {
			return e.printJSON(resp.body)
		}
		var slas []struct {
			Version int `json:"version"`
			domain.SLADefinition
		}
		if err := json.Unmarshal(resp.body, &slas); err != nil {
			return fmt.Errorf("malformed SLA list: %w", err)
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tVERSION\tDEFAULT\tENABLED\tTIMEZONE\tPRIORITIES\tCONDITION")
		for _, s := range slas {
			names := make([]string, len(s.Priorities))
			for i, p := range s.Priorities {
				names[i] = p.Name
			}
			fmt.Fprintf(w, "%s\t%d\t%t\t%t\t%s\t%s\t%s\n", s.Name, s.Version, s.Default, s.Enabled == nil || *s.Enabled,
				s.Calendar.Timezone, strings.Join(names, ","), dash(s.Condition))
		}
		return w.Flush()
	case "save":
		if len(pos) != 2 {
			return usagef("sla save needs a FILE (- for standard input)")
		}
		data, err := readInput(pos[1])
		if err != nil {
			return err
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return fmt.Errorf("%s is not a JSON object: %w", pos[1], err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			return err
		}
		resp, err := e.call(ctx, request{method: http.MethodPost, path: "/v1/slas", body: json.RawMessage(compact.Bytes())})
		if err != nil {
			return err
		}
		return e.printJSON(resp.body)
	case "remove":
		if len(pos) != 2 {
			return usagef("sla remove needs a NAME")
		}
		if _, err := e.call(ctx, request{method: http.MethodDelete, path: "/v1/slas/" + url.PathEscape(pos[1])}); err != nil {
			return err
		}
		return e.printValue(map[string]string{"removed": pos[1]})
	}
	return usagef("unknown sla action %q: use list, save or remove", pos[0])
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

func cmdSettings(ctx context.Context, e *env, args []string) error {
	fs := e.flags("settings")
	days := fs.Int("auto-close-days", 0, "days after a reply without customer message before a ticket closes automatically (0: never)")
	reset := fs.Bool("allow-sla-reset", false, "allow agents to reset a ticket's SLA")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var current domain.SupportSettings
	if err := e.getJSON(ctx, request{method: http.MethodGet, path: "/v1/settings"}, &current); err != nil {
		return err
	}
	if !set["auto-close-days"] && !set["allow-sla-reset"] {
		return e.printValue(current)
	}
	if set["auto-close-days"] {
		current.AutoCloseDays = *days
	}
	if set["allow-sla-reset"] {
		current.AllowSLAReset = *reset
	}
	resp, err := e.call(ctx, request{method: http.MethodPut, path: "/v1/settings", body: current})
	if err != nil {
		return err
	}
	return e.printJSON(resp.body)
}
