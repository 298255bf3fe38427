package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// env is a real collabd stack on loopback: bbolt in a temp dir, a hub, a
// sockets.Server on an httptest server, and the session glue.
type env struct {
	t     testing.TB
	dir   string
	store *storage.Bolt
	hub   *collab.Hub
	srv   *sockets.Server
	svc   *session.Service
	ts    *httptest.Server
	addr  string
	logs  *syncBuffer
	once  sync.Once
}

type envOpts struct {
	dir     string // reuse a data dir (a restart); "" makes one
	limits  session.Limits
	auth    func(json.RawMessage) (session.Identity, error)
	hubCfg  collab.Config
	sockCfg sockets.Config
	store   storage.Options
	peers   session.Peers // nil: a single node
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t, dir: o.dir, logs: &syncBuffer{}}
	if e.dir == "" {
		e.dir = t.TempDir()
	}
	var err error
	e.store, err = storage.OpenBolt(filepath.Join(e.dir, "collabd.db"), o.store)
	if err != nil {
		t.Fatal(err)
	}
	hc := o.hubCfg
	hc.Store = e.store
	e.hub, err = collab.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	sc := o.sockCfg
	sc.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.srv, err = sockets.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = session.Attach(e.srv, session.Config{
		Hub:          e.hub,
		Limits:       o.limits,
		Authenticate: o.auth,
		Logger:       zerolog.New(e.logs).Level(zerolog.DebugLevel),
		Peers:        o.peers,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", e.srv)
	e.ts = httptest.NewServer(mux)
	e.addr = strings.TrimPrefix(e.ts.URL, "http://")
	t.Cleanup(e.stop)
	return e
}

// stop shuts the stack down in the order cmd/collabd does.
func (e *env) stop() {
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			e.t.Errorf("sockets shutdown: %v", err)
		}
		e.ts.Close()
		if err := e.hub.Close(ctx); err != nil {
			e.t.Errorf("hub close: %v", err)
		}
		e.svc.Wait()
		if err := e.store.Close(); err != nil {
			e.t.Errorf("store close: %v", err)
		}
	})
}

func (e *env) text(doc string) (uint64, string) {
	e.t.Helper()
	rev, text, err := e.hub.Text(context.Background(), doc)
	if err != nil {
		e.t.Fatal(err)
	}
	return rev, text.String()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// event is one server event a test client received.
type event struct {
	name string
	arg  json.RawMessage
}

// tclient is a sioclient with its events in a channel.
type tclient struct {
	t      testing.TB
	c      *sioclient.Client
	events chan event
}

func (e *env) dial(auth any) (*tclient, error) {
	tc := &tclient{t: e.t, events: make(chan event, 4096)}
	c, err := sioclient.Dial(context.Background(), sioclient.Config{
		Addr: e.addr,
		Auth: auth,
		OnEvent: func(name string, args []byte) {
			var arr []json.RawMessage
			if json.Unmarshal(args, &arr) != nil || len(arr) == 0 {
				arr = []json.RawMessage{nil}
			}
			select {
			case tc.events <- event{name, arr[0]}:
			default:
				e.t.Errorf("test client event queue full")
			}
		},
	})
	if err != nil {
		return nil, err
	}
	tc.c = c
	e.t.Cleanup(c.Close)
	return tc, nil
}

func (e *env) client() *tclient {
	e.t.Helper()
	tc, err := e.dial(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return tc
}

// ack is the decoded first argument of an ack.
type ack struct {
	OK    bool `json:"ok"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Rev     uint64            `json:"rev"`
	Text    *string           `json:"text"`
	Ops     []json.RawMessage `json:"ops"`
	Members []member          `json:"members"`
	raw     json.RawMessage
}

type member struct {
	Client string       `json:"client"`
	User   session.User `json:"user"`
	Sel    []session.Selection
	Rev    *uint64
}

func (a ack) code() string {
	if a.Error == nil {
		return ""
	}
	return a.Error.Code
}

// call emits name with args and returns the decoded ack.
func (tc *tclient) call(name string, args ...any) ack {
	tc.t.Helper()
	a, err := tc.try(name, args...)
	if err != nil {
		tc.t.Fatalf("%s: %v", name, err)
	}
	return a
}

func (tc *tclient) try(name string, args ...any) (ack, error) {
	raw, err := tc.c.Call(10*time.Second, name, args...)
	if err != nil {
		return ack{}, err
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 1 {
		return ack{}, errors.New("ack is not an array of one value: " + string(raw))
	}
	var a ack
	if err := json.Unmarshal(arr[0], &a); err != nil {
		return ack{}, err
	}
	a.raw = arr[0]
	return a, nil
}

func (tc *tclient) mustOK(name string, args ...any) ack {
	tc.t.Helper()
	a := tc.call(name, args...)
	if !a.OK {
		tc.t.Fatalf("%s %v: %s", name, args, a.raw)
	}
	return a
}

// next returns the next event named name, skipping others, or fails.
func (tc *tclient) next(name string) json.RawMessage {
	tc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-tc.events:
			if ev.name == name {
				return ev.arg
			}
		case <-deadline:
			tc.t.Fatalf("no %s event within 10s", name)
			return nil
		}
	}
}

// quiet asserts that no event named name arrives within d.
func (tc *tclient) quiet(name string, d time.Duration) {
	tc.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-tc.events:
			if ev.name == name {
				tc.t.Fatalf("unexpected %s event: %s", name, ev.arg)
			}
		case <-deadline:
			return
		}
	}
}

func obj(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }
