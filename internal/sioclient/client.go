package sioclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Sentinel errors.
var (
	// ErrHandshake: the server's open or CONNECT answer was not what Engine.IO v4 /
	// Socket.IO v5 prescribe.
	ErrHandshake = errors.New("sioclient: bad handshake")
	// ErrConnectRefused: the namespace answered CONNECT_ERROR.
	ErrConnectRefused = errors.New("sioclient: connect refused")
	// ErrClosed: the client was closed by Close.
	ErrClosed = errors.New("sioclient: closed")
	// ErrProtocol: the server sent a packet this client cannot parse.
	ErrProtocol = errors.New("sioclient: protocol error")
	// ErrServerDisconnect: the server sent DISCONNECT for the namespace or
	// Engine.IO close.
	ErrServerDisconnect = errors.New("sioclient: disconnected by server")
)

// Config says how to connect. The zero value of every field but Addr is usable.
type Config struct {
	// Addr is host:port of the server (required).
	Addr string
	// Path is the Socket.IO endpoint; "" means "/socket.io/".
	Path string
	// Namespace to join; "" means "/".
	Namespace string
	// Auth is sent as the CONNECT payload when non-nil (JSON-encoded).
	Auth any
	// HandshakeTimeout bounds dial + open + CONNECT; 0 means 10 s.
	HandshakeTimeout time.Duration
	// OnEvent, when non-nil, is called on the reader goroutine for every EVENT
	// with the event name and the raw JSON array of its arguments (name
	// excluded). The slice is only valid during the call.
	//
	// Ack callbacks (EmitAck) likewise get a slice valid only during the call.
	OnEvent func(name string, args []byte)
	// ReadBufferSize and WriteBufferSize are gorilla's buffer sizes; 0 means 1024.
	ReadBufferSize, WriteBufferSize int
	// SocketRecvBuffer, when > 0, sets SO_RCVBUF (bytes) on the TCP socket,
	// which turns off the kernel's receive-buffer autotuning: a slow reader
	// then pushes back on the server quickly. 0 keeps the kernel default.
	SocketRecvBuffer int
}

// Client is one connected Socket.IO socket (one namespace on one WebSocket).
type Client struct {
	cfg  Config
	conn *websocket.Conn
	nsp  string // namespace prefix for packets: "" for "/", else "/name,"

	// ID is the Socket.IO socket id the server assigned (CONNECT answer).
	ID string

	wmu sync.Mutex // guards writes on conn

	amu    sync.Mutex // guards acks and nextID
	acks   map[uint64]func(args []byte)
	nextID uint64

	done    chan struct{}
	errOnce sync.Once
	err     error // set once before done is closed
}

// Dial connects over WebSocket, completes the Engine.IO and Socket.IO
// handshakes and starts the reader goroutine.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Path == "" {
		cfg.Path = "/socket.io/"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "/"
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.ReadBufferSize == 0 {
		cfg.ReadBufferSize = 1024
	}
	if cfg.WriteBufferSize == 0 {
		cfg.WriteBufferSize = 1024
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: cfg.Addr, Path: cfg.Path, RawQuery: "EIO=4&transport=websocket"}
	nd := &net.Dialer{}
	if n := cfg.SocketRecvBuffer; n > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setRecvBuffer(fd, n)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	d := websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.WriteBufferSize,
	}
	conn, _, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("sioclient: dial %s: %w", u.String(), err)
	}
	c := &Client{cfg: cfg, conn: conn, acks: make(map[uint64]func([]byte)), done: make(chan struct{})}
	if cfg.Namespace != "/" {
		c.nsp = cfg.Namespace + ","
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	if err := c.handshake(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

func (c *Client) handshake() error {
	_, msg, err := c.conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("%w: reading open: %v", ErrHandshake, err)
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("%w: open packet %q", ErrHandshake, msg)
	}
	connect := "40" + c.nsp
	if c.cfg.Auth != nil {
		b, err := json.Marshal(c.cfg.Auth)
		if err != nil {
			return fmt.Errorf("sioclient: encoding auth: %w", err)
		}
		connect += string(b)
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(connect)); err != nil {
		return fmt.Errorf("%w: sending CONNECT: %v", ErrHandshake, err)
	}
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("%w: reading CONNECT answer: %v", ErrHandshake, err)
		}
		switch {
		case string(msg) == "2":
			if err := c.conn.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return fmt.Errorf("%w: pong: %v", ErrHandshake, err)
			}
		case bytes.HasPrefix(msg, []byte("40"+c.nsp)):
			var ans struct {
				SID string `json:"sid"`
			}
			if err := json.Unmarshal(msg[2+len(c.nsp):], &ans); err != nil || ans.SID == "" {
				return fmt.Errorf("%w: CONNECT answer %q", ErrHandshake, msg)
			}
			c.ID = ans.SID
			return nil
		case bytes.HasPrefix(msg, []byte("44"+c.nsp)):
			return fmt.Errorf("%w: %s", ErrConnectRefused, msg[2+len(c.nsp):])
		default:
			return fmt.Errorf("%w: unexpected packet %q before CONNECT answer", ErrHandshake, msg)
		}
	}
}

// Done is closed when the connection is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended; nil while it is open.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func (c *Client) finish(err error) {
	c.errOnce.Do(func() {
		c.err = err
		_ = c.conn.Close()
		close(c.done)
	})
}

// Close closes the WebSocket without a Socket.IO DISCONNECT (as a crashed
// client would) and waits for the reader goroutine.
func (c *Client) Close() {
	c.finish(ErrClosed)
	<-c.done
}

// Disconnect sends DISCONNECT for the namespace, then closes.
func (c *Client) Disconnect() {
	_ = c.write([]byte("41" + c.nsp))
	c.Close()
}

func (c *Client) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// encodeEvent builds "42<nsp><id>[name,args...]".
func (c *Client) encodeEvent(id string, name string, args []any) ([]byte, error) {
	arr := make([]any, 0, len(args)+1)
	arr = append(arr, name)
	arr = append(arr, args...)
	var buf bytes.Buffer
	buf.WriteString("42")
	buf.WriteString(c.nsp)
	buf.WriteString(id)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(arr); err != nil {
		return nil, fmt.Errorf("sioclient: encoding %q: %w", name, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // drop the encoder's newline
}

// Emit sends an event without an acknowledgement.
func (c *Client) Emit(name string, args ...any) error {
	msg, err := c.encodeEvent("", name, args)
	if err != nil {
		return err
	}
	return c.write(msg)
}

// EmitAck sends an event asking for an acknowledgement; onAck is called on the
// reader goroutine with the raw JSON array of the ack arguments. If the
// connection ends first, onAck is never called.
func (c *Client) EmitAck(onAck func(args []byte), name string, args ...any) error {
	c.amu.Lock()
	c.nextID++
	id := c.nextID
	c.acks[id] = onAck
	c.amu.Unlock()
	msg, err := c.encodeEvent(strconv.FormatUint(id, 10), name, args)
	if err == nil {
		err = c.write(msg)
	}
	if err != nil {
		c.amu.Lock()
		delete(c.acks, id)
		c.amu.Unlock()
	}
	return err
}

// Call is EmitAck that waits for the answer (at most timeout).
func (c *Client) Call(timeout time.Duration, name string, args ...any) ([]byte, error) {
	ch := make(chan []byte, 1)
	err := c.EmitAck(func(a []byte) { ch <- bytes.Clone(a) }, name, args...)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		return a, nil
	case <-c.done:
		return nil, c.err
	case <-t.C:
		return nil, fmt.Errorf("sioclient: %q: no ack within %v", name, timeout)
	}
}

func (c *Client) readLoop() {
	var buf bytes.Buffer // reused for every message: no allocation per read
	for {
		typ, r, err := c.conn.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.finish(fmt.Errorf("sioclient: read: %w", err))
			return
		}
		msg := buf.Bytes()
		if typ != websocket.TextMessage || len(msg) == 0 {
			c.finish(fmt.Errorf("%w: unexpected binary frame", ErrProtocol))
			return
		}
		switch msg[0] {
		case '2': // ping
			if err := c.write([]byte("3")); err != nil {
				c.finish(fmt.Errorf("sioclient: pong: %w", err))
				return
			}
		case '1':
			c.finish(fmt.Errorf("%w: engine close", ErrServerDisconnect))
			return
		case '6', '3':
		case '4':
			if err := c.handlePacket(msg[1:]); err != nil {
				c.finish(err)
				return
			}
		default:
			c.finish(fmt.Errorf("%w: engine packet %q", ErrProtocol, msg))
			return
		}
	}
}

func (c *Client) handlePacket(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: empty packet", ErrProtocol)
	}
	typ := p[0]
	p = p[1:]
	if c.nsp != "" {
		if !bytes.HasPrefix(p, []byte(c.nsp)) {
			return nil // another namespace: not ours
		}
		p = p[len(c.nsp):]
	} else if len(p) > 0 && p[0] == '/' {
		return nil
	}
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	idText, body := p[:i], p[i:]
	switch typ {
	case '1':
		return fmt.Errorf("%w: namespace disconnect", ErrServerDisconnect)
	case '2':
		if c.cfg.OnEvent == nil {
			return nil
		}
		name, args, err := splitEvent(body)
		if err != nil {
			return err
		}
		c.cfg.OnEvent(name, args)
		return nil
	case '3':
		id, err := strconv.ParseUint(string(idText), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: ack id %q", ErrProtocol, idText)
		}
		c.amu.Lock()
		f := c.acks[id]
		delete(c.acks, id)
		c.amu.Unlock()
		if f != nil {
			f(body)
		}
		return nil
	default:
		return fmt.Errorf("%w: packet type %q", ErrProtocol, typ)
	}
}

// splitEvent returns the event name and the JSON array of the remaining
// arguments of an EVENT body `["name",a,b]`.
func splitEvent(body []byte) (string, []byte, error) {
	// Fast path for the common shape: a name without escapes.
	if len(body) > 3 && body[0] == '[' && body[1] == '"' {
		if end := bytes.IndexByte(body[2:], '"'); end >= 0 && plainASCII(body[2:2+end]) {
			name := string(body[2 : 2+end])
			rest := body[2+end+1:]
			switch {
			case len(rest) > 0 && rest[0] == ']':
				return name, []byte("[]"), nil
			case len(rest) > 0 && rest[0] == ',':
				out := make([]byte, 0, len(rest))
				out = append(out, '[')
				out = append(out, rest[1:]...)
				return name, out, nil
			}
		}
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(body, &arr); err != nil || len(arr) == 0 {
		return "", nil, fmt.Errorf("%w: event body %q", ErrProtocol, body)
	}
	var name string
	if err := json.Unmarshal(arr[0], &name); err != nil {
		return "", nil, fmt.Errorf("%w: event name %q", ErrProtocol, arr[0])
	}
	// the arguments after the name, as a JSON array
	rest := bytes.TrimSpace(body[1:])
	rest = bytes.TrimPrefix(rest, arr[0])
	rest = bytes.TrimSpace(rest)
	rest = bytes.TrimPrefix(rest, []byte(","))
	out := make([]byte, 0, len(rest)+1)
	out = append(out, '[')
	out = append(out, rest...)
	return name, out, nil
}

// plainASCII reports whether b is printable ASCII without a backslash: a JSON
// string body that decodes to itself.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
