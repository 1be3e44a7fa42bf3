package jetstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Appends to the embedded server go over pipes: in-process connections on which the
// append itself writes its message and reads the acknowledgement, in the NATS client
// protocol. Through a nats.Conn the same request takes three more goroutine hand-offs
// on the client side (the client's flusher writes the message, its reader takes the
// answer and hands it to the request multiplexer's subscription goroutine, which hands
// it to the caller), which cost more than the server's work for the append: measured
// on the embedded server, a pipe request takes 0.55x to 0.7x the time of the JetStream
// client's PublishMsg, and lets a command, which also decides, encodes and hashes, cost
// about as much as the bare publish.
//
// A pipe serves one append at a time and speaks only what an append needs: CONNECT
// with a user and password or a token, SUB to its own inbox, HPUB of the event, and
// the server's MSG/HMSG answer, PING, PONG, INFO, +OK and -ERR. Anything else about the
// connection (TLS, nkeys, credentials files, reconnecting, a remote server) is the
// nats.Conn's job, and the store then appends through it. A bulk read (ReadData, in
// read.go) takes a pipe of its own for the same reason: the client's reader goroutine
// and its per-message channel cost more than the reading itself.

// pipeIdleLimit is how long a pipe may sit unused before it is replaced rather than
// used. Nobody reads an idle pipe, so it does not answer the server's pings, and the
// server closes a client that misses two of them (it pings every two minutes by
// default): a pipe idle for longer than half of that is redialled instead.
const pipeIdleLimit = time.Minute

var (
	// errPipeRefused reports a server that did not take the pipe's CONNECT.
	errPipeRefused = errors.New("embedded server refused the in-process connection")
	// errPipeUnsent reports a request that did not leave its pipe (pipe.request).
	errPipeUnsent = errors.New("in-process connection closed before the message was sent")
)

// pipePool holds the store's pipes. A slot is a pipe or nil (not dialled yet, or
// dropped after an error); an append takes a slot if one is free, or goes through a
// nats.Conn, so that the number of pipes stays bounded and nobody waits for one.
type pipePool struct {
	srv     *server.Server
	connect connectOptions // every pipe's CONNECT, but its name
	slots   chan *pipe
}

// connectOptions is the CONNECT message of a pipe, in the fields nats-server reads.
type connectOptions struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	User         string `json:"user,omitempty"`
	Pass         string `json:"pass,omitempty"`
	Token        string `json:"auth_token,omitempty"`
}

// newPipePool returns the pool for appends to srv with the credentials of opts, or
// nil when opts ask for something a pipe does not do (then every append goes through
// the nats.Conn). It dials one pipe to check that the server takes it.
func newPipePool(srv *server.Server, opts []nats.Option, size int) (*pipePool, error) {
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.Nkey != "" || o.UserJWT != nil || o.UserInfo != nil || o.TokenHandler != nil || o.Secure || o.TLSConfig != nil {
		return nil, nil
	}
	connect := connectOptions{
		Lang: "go", Version: nats.Version, Protocol: 1, Headers: true, NoResponders: true,
		User: o.User, Pass: o.Password, Token: o.Token,
	}
	pool := &pipePool{srv: srv, connect: connect, slots: make(chan *pipe, size)}
	first, err := pool.dial(appendPipe)
	if err != nil {
		return nil, err
	}
	pool.slots <- first
	for range size - 1 {
		pool.slots <- nil
	}
	return pool, nil
}

// get takes a free pipe, dialling it if its slot is empty or it has been idle too
// long. It returns nil when every slot is busy or the dial failed; the slot is then
// released again.
func (p *pipePool) get() *pipe {
	if p == nil {
		return nil
	}
	var pc *pipe
	select {
	case pc = <-p.slots:
	default:
		return nil
	}
	if pc != nil && time.Since(pc.lastUsed) < pipeIdleLimit {
		return pc
	}
	if pc != nil {
		pc.conn.Close()
	}
	pc, err := p.dial(appendPipe)
	if err != nil {
		p.slots <- nil
		return nil
	}
	return pc
}

// put returns a pipe to its slot; a broken one (after an error that left the protocol
// in an unknown place) is closed and its slot emptied.
func (p *pipePool) put(pc *pipe) {
	if pc.broken {
		pc.conn.Close()
		pc = nil
	} else {
		pc.lastUsed = time.Now()
	}
	p.slots <- pc
}

// close waits for the appends in flight on pipes (each bounded by its deadline) and
// closes every pipe. Appends after it go through the nats.Conn.
func (p *pipePool) close() {
	if p == nil {
		return
	}
	for range cap(p.slots) {
		if pc := <-p.slots; pc != nil {
			pc.conn.Close()
		}
	}
}

// pipe is one in-process connection of the pool.
type pipe struct {
	conn       net.Conn
	r          *bufio.Reader
	inbox      string
	maxPayload int
	header     []byte // the caller's header block, kept for the next one
	out        []byte // the frame being written, kept for the next one
	lastUsed   time.Time
	// deadline is the pipe's current deadline; deadlineKept says it may serve the
	// next request too (setDeadline).
	deadline     time.Time
	deadlineKept bool
	broken       bool // an error left the protocol in an unknown place
}

// pipeUse is what a pipe is for: the connection name the server shows (monitoring
// tells the pipes of appends from those of bulk reads) and the size of its read buffer.
type pipeUse struct {
	name       string
	readBuffer int
}

var (
	// appendPipe reads acknowledgements: its buffer holds any line of the protocol an
	// append reads but an INFO of a large cluster, which is read whole at the handshake
	// and skipped in pieces after.
	appendPipe = pipeUse{name: "ticketcore-append", readBuffer: pipeReadBuffer}
	// readPipe reads the answers of bulk reads (ReadData): each read of a pipe takes at
	// most one buffer of what the server writes.
	readPipe = pipeUse{name: "ticketcore-read", readBuffer: 64 << 10}
)

// pipeReadBuffer is the read buffer of an append's pipe (appendPipe).
const pipeReadBuffer = 4096

// dial opens a pipe to the server for use and introduces it.
func (p *pipePool) dial(use pipeUse) (*pipe, error) {
	connect := p.connect
	connect.Name = use.name
	hello, err := json.Marshal(connect)
	if err != nil {
		return nil, err
	}
	conn, err := p.srv.InProcessConn()
	if err != nil {
		return nil, err
	}
	pc := &pipe{conn: conn, r: bufio.NewReaderSize(conn, use.readBuffer), inbox: nats.NewInbox(), lastUsed: time.Now()}
	if err := pc.handshake(hello); err != nil {
		conn.Close()
		return nil, err
	}
	return pc, nil
}

// handshake reads the server's INFO, sends CONNECT and the inbox's SUB, and waits for
// the PONG of a PING sent after them: the server answers -ERR first if it refused.
func (pc *pipe) handshake(connect []byte) error {
	pc.conn.SetDeadline(time.Now().Add(requestTimeout))
	defer pc.conn.SetDeadline(time.Time{})
	// The first INFO is read whole, however long (a cluster's lists its peers' URLs).
	line, err := pc.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("in-process connection: %w", err)
	}
	info, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("INFO "))
	if !ok {
		return fmt.Errorf("in-process connection: expected INFO, got %q", line)
	}
	var serverInfo struct {
		MaxPayload int  `json:"max_payload"`
		Headers    bool `json:"headers"`
	}
	if err := json.Unmarshal(info, &serverInfo); err != nil {
		return fmt.Errorf("in-process connection: INFO: %w", err)
	}
	if !serverInfo.Headers {
		return fmt.Errorf("in-process connection: %w", nats.ErrHeadersNotSupported)
	}
	pc.maxPayload = serverInfo.MaxPayload
	hello := make([]byte, 0, len(connect)+len(pc.inbox)+32)
	hello = append(hello, "CONNECT "...)
	hello = append(hello, connect...)
	hello = append(hello, "\r\nSUB "...)
	hello = append(hello, pc.inbox...)
	hello = append(hello, " 1\r\nPING\r\n"...)
	if _, err := pc.conn.Write(hello); err != nil {
		return fmt.Errorf("in-process connection: %w", err)
	}
	for {
		line, err := pc.readLine()
		if err != nil {
			return fmt.Errorf("in-process connection: %w", err)
		}
		switch {
		case bytes.HasPrefix(line, []byte("PONG")):
			return nil
		case bytes.HasPrefix(line, []byte("-ERR")):
			return fmt.Errorf("%w: %s", errPipeRefused, line)
		}
	}
}

// readLine returns the next protocol line without its CR LF, a view of the read
// buffer valid until the next read. The tail of a line longer than the buffer (only
// an INFO can be) is skipped.
func (pc *pipe) readLine() ([]byte, error) {
	line, err := pc.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = pc.r.ReadSlice('\n')
		}
		if err != nil {
			return nil, err
		}
		return []byte("INFO {}"), nil
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// request publishes data with hdr (a complete NATS/1.0 header block) to subject with
// the pipe's inbox as the reply subject, and returns the answer's payload, a view of
// the read buffer valid until the pipe's next use. Its errors:
//   - nats.ErrMaxPayload, or ctx's error before sending: nothing was sent;
//   - errPipeUnsent: the pipe was closed (by the server, say) before the whole message
//     left, so the server did not take it (it acts on a message once it has its last
//     byte) and the append may go another way;
//   - nats.ErrNoResponders: no stream took the message;
//   - anything else (a timeout, a closed pipe, a -ERR): the outcome is unknown.
//
// After errPipeUnsent and the last kind, the pipe is broken.
func (pc *pipe) request(ctx context.Context, subject string, hdr, data []byte) ([]byte, error) {
	if pc.maxPayload > 0 && len(hdr)+len(data) > pc.maxPayload {
		return nil, nats.ErrMaxPayload
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := pc.setDeadline(ctx); err != nil {
		pc.broken = true
		return nil, fmt.Errorf("%w: %w", errPipeUnsent, err)
	}
	if _, ok := ctx.Deadline(); ok {
		// As with a nats.Conn request (request in append.go), a context with a deadline
		// ends the wait when it is cancelled; without one, only before sending.
		stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(time.Now()) })
		defer func() {
			if !stop() {
				// The deadline may have moved after the answer came.
				pc.broken = true
			}
		}()
	}

	out := append(pc.out[:0], "HPUB "...)
	out = append(out, subject...)
	out = append(out, ' ')
	out = append(out, pc.inbox...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(hdr)), 10)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(hdr)+len(data)), 10)
	out = append(out, "\r\n"...)
	out = append(out, hdr...)
	out = append(out, data...)
	out = append(out, "\r\n"...)
	pc.out = out
	// A pipe's Write returns without error only once the server has read every byte.
	if _, err := pc.conn.Write(out); err != nil {
		pc.broken = true
		return nil, fmt.Errorf("%w: %w", errPipeUnsent, err)
	}
	answer, err := pc.readAnswer()
	if err != nil && !errors.Is(err, nats.ErrNoResponders) {
		pc.broken = true
	}
	return answer, err
}

// setDeadline bounds the request by ctx's deadline or, when ctx has none, by
// requestTimeout to twice that: setting a pipe's deadline starts two timers, so a
// deadline of this second kind is kept for the next requests while it is at least
// requestTimeout away.
func (pc *pipe) setDeadline(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		now := time.Now()
		if pc.deadlineKept && pc.deadline.Sub(now) >= requestTimeout {
			return nil
		}
		deadline = now.Add(2 * requestTimeout)
	}
	pc.deadline, pc.deadlineKept = deadline, !ok
	return pc.conn.SetDeadline(deadline)
}

// readAnswer reads up to the next message on the inbox and returns its payload, a
// view of the read buffer valid until the next read.
func (pc *pipe) readAnswer() ([]byte, error) {
	header, payload, err := pc.readMessage()
	if err != nil {
		return nil, err
	}
	// A header without a payload is a status: 503 is "no responders".
	if len(payload) == 0 && bytes.HasPrefix(header, []byte("NATS/1.0 503")) {
		return nil, nats.ErrNoResponders
	}
	return payload, nil
}

// readMessage reads up to the next message on the inbox, answering the server's pings
// on the way, and returns its header block (empty for a MSG) and payload: views of the
// read buffer valid until the next read when the message fits in it.
func (pc *pipe) readMessage() (header, payload []byte, err error) {
	for {
		line, err := pc.readLine()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("MSG ")):
			size, err := lastNumber(line)
			if err != nil {
				return nil, nil, err
			}
			return pc.readBody(0, size)
		case bytes.HasPrefix(line, []byte("HMSG ")):
			// HMSG <subject> <sid> [reply] <header size> <total size>
			total, err := lastNumber(line)
			if err != nil {
				return nil, nil, err
			}
			hdrSize, err := lastNumber(bytes.TrimRight(line[:bytes.LastIndexByte(line, ' ')], " "))
			if err != nil || hdrSize > total {
				return nil, nil, fmt.Errorf("in-process connection: malformed %q", line)
			}
			return pc.readBody(hdrSize, total)
		case bytes.HasPrefix(line, []byte("PING")):
			if _, err := pc.conn.Write([]byte("PONG\r\n")); err != nil {
				return nil, nil, err
			}
		case bytes.HasPrefix(line, []byte("-ERR")):
			return nil, nil, fmt.Errorf("in-process connection: server error %s", line)
		}
		// PONG, +OK and INFO need nothing.
	}
}

// readBody reads a message's body of total bytes, the first hdrSize of them its
// header, and the CR LF after it. The slices are views of the read buffer when the body
// fits in it (an acknowledgement always does), valid until the next read.
func (pc *pipe) readBody(hdrSize, total int) (header, payload []byte, err error) {
	var body []byte
	if total+2 <= pc.r.Size() {
		if body, err = pc.r.Peek(total + 2); err != nil {
			return nil, nil, err
		}
		// Discarding only moves the read position: the bytes stay until the next fill.
		pc.r.Discard(total + 2)
	} else {
		body = make([]byte, total+2)
		if _, err := io.ReadFull(pc.r, body); err != nil {
			return nil, nil, err
		}
	}
	return body[:hdrSize], body[hdrSize:total], nil
}

// lastNumber parses the last space-separated field of a protocol line.
func lastNumber(line []byte) (int, error) {
	field := line[bytes.LastIndexByte(line, ' ')+1:]
	n, err := strconv.Atoi(string(field))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("in-process connection: malformed %q", line)
	}
	return n, nil
}
