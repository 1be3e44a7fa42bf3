package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// maxResponseBytes bounds what the client reads of one response.
const maxResponseBytes = 256 << 20

// problem is an RFC 9457 problem document as ticketd sends it.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Errors   []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// apiError is an error answer of the API.
type apiError struct {
	status int
	p      problem
}

func (e *apiError) Error() string {
	if e.p.Detail == "" {
		return e.p.Title
	}
	return e.p.Title + ": " + e.p.Detail
}

// report is what the CLI prints: "error: <title>: <detail>", then each field error.
func (e *apiError) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "error: %s\n", e.Error())
	for _, f := range e.p.Errors {
		fmt.Fprintf(&b, "  %s: %s\n", f.Field, f.Message)
	}
	return b.String()
}

// request is one API call.
type request struct {
	method  string
	path    string // already escaped
	query   url.Values
	body    any    // marshalled as JSON; a json.RawMessage is sent as is
	ifMatch string // ticket version for If-Match
}

// response is a successful API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// write reports whether a method changes state (and so carries an Idempotency-Key).
func write(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// call sends r to the server; an error answer becomes an *apiError.
func (e *env) call(ctx context.Context, r request) (*response, error) {
	base := strings.TrimRight(e.server, "/")
	u, err := url.Parse(base + r.path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http(s) URL", e.server)
	}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "ticketctl")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token := e.apiToken(); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if e.actor != "" {
		req.Header.Set("X-Actor", e.actor)
	}
	if write(r.method) {
		if e.idemKey == "" {
			// One key per invocation: a command that writes twice would need two.
			e.idemKey = uuid.NewString()
		}
		req.Header.Set("Idempotency-Key", e.idemKey)
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", `"`+r.ifMatch+`"`)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, u.Redacted(), err)
	}
	if resp.StatusCode >= 400 {
		return nil, problemOf(resp, data)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// problemOf reads an error answer: a problem document, or whatever else came back.
func problemOf(resp *http.Response, data []byte) *apiError {
	e := &apiError{status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if json.Unmarshal(data, &e.p) == nil && e.p.Title != "" {
			return e
		}
	}
	e.p = problem{Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode}
	if e.p.Title == "" {
		e.p.Title = resp.Status
	}
	if detail := strings.TrimSpace(string(data)); detail != "" {
		if len(detail) > 500 {
			detail = detail[:500] + "..."
		}
		e.p.Detail = detail
	}
	return e
}

// getJSON calls the API and decodes the answer into v.
func (e *env) getJSON(ctx context.Context, r request, v any) error {
	resp, err := e.call(ctx, r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("%s %s: malformed answer: %w", r.method, r.path, err)
	}
	return nil
}

// printJSON writes an API answer indented, as JSON.
func (e *env) printJSON(data []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(data), "", "  "); err != nil {
		_, err = e.stdout.Write(data)
		return err
	}
	out.WriteByte('\n')
	_, err := e.stdout.Write(out.Bytes())
	return err
}

// printValue writes v as indented JSON.
func (e *env) printValue(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ticketPath is the API path of a ticket (by id or number), with a suffix.
func ticketPath(id string, suffix ...string) string {
	p := "/v1/tickets/" + url.PathEscape(id)
	for _, s := range suffix {
		p += "/" + s
	}
	return p
}

// apiToken is the token to send: --token / TICKETCTL_TOKEN, else the first admin
// token that ticketd wrote in ./data (its default data folder), for the local tour.
func (e *env) apiToken() string {
	if e.token != "" {
		return e.token
	}
	b, err := os.ReadFile(filepath.Join("data", "admin.token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
