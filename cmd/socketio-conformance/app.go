package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/sockets/engineio"
)

// Settings of the two modes (see CONFORMANCE.md).
const (
	officialPingInterval   = 300 * time.Millisecond
	officialPingTimeout    = 200 * time.Millisecond
	officialConnectTimeout = 1000 * time.Millisecond
	// authDelay separates the "auth" event from the CONNECT answer (see
	// officialHandlers).
	authDelay = 20 * time.Millisecond

	interopPingInterval   = 1000 * time.Millisecond
	interopPingTimeout    = 1000 * time.Millisecond
	interopRecoveryWindow = 2 * time.Minute

	maxPayload = 1_000_000

	// requestAckTimeout bounds the client's answer to "ack-me".
	requestAckTimeout = 3 * time.Second
	// maxCSRCount bounds csr-drop's count.
	maxCSRCount = 1000
	// maxReasons bounds the disconnect-reason table; it is emptied when full.
	maxReasons = 100_000
)

// app is the set of servers behind one HTTP mux.
type app struct {
	mux  *http.ServeMux
	sio  *sockets.Server
	echo *engineio.Server // --official only

	mu      sync.Mutex        // guards reasons
	reasons map[string]string // socket id -> server-side disconnect reason
}

func newApp(official bool) (*app, error) {
	a := &app{mux: http.NewServeMux(), reasons: make(map[string]string)}
	var err error
	if official {
		a.sio, err = sockets.New(sockets.Config{
			PingInterval:   officialPingInterval,
			PingTimeout:    officialPingTimeout,
			MaxPayload:     maxPayload,
			ConnectTimeout: officialConnectTimeout,
		})
		if err != nil {
			return nil, err
		}
		for _, name := range []string{"/", "/custom"} {
			nsp := a.sio.Of(name)
			main := name == "/"
			nsp.OnConnection(func(s *sockets.Socket) { a.officialHandlers(s, main) })
		}
		a.echo = newEngineEcho(engineio.Config{
			PingInterval: officialPingInterval,
			PingTimeout:  officialPingTimeout,
			MaxPayload:   maxPayload,
		})
		a.mux.Handle("/engine.io/", a.echo)
	} else {
		a.sio, err = sockets.New(sockets.Config{
			PingInterval: interopPingInterval,
			PingTimeout:  interopPingTimeout,
			MaxPayload:   maxPayload,
			Recovery:     sockets.Recovery{Enabled: true, Window: interopRecoveryWindow},
		})
		if err != nil {
			return nil, err
		}
		for _, name := range []string{"/", "/chat", "/secure"} {
			nsp := a.sio.Of(name)
			if name == "/secure" {
				nsp.Use(tokenMiddleware)
			}
			nsp.OnConnection(a.interopHandlers)
		}
	}
	a.mux.Handle("/socket.io/", a.sio)
	return a, nil
}

func (a *app) shutdown(ctx context.Context) error {
	err := a.sio.Shutdown(ctx)
	if a.echo != nil {
		err = errors.Join(err, a.echo.Shutdown(ctx))
	}
	return err
}

// officialHandlers: "auth" first, then on the main namespace "message" and
// "message-with-ack" answered with the same arguments (binary as binary).
//
// The "auth" event is sent authDelay after the CONNECT answer, not in the same
// write burst: the official suite reads the CONNECT answer and then, in a
// promise continuation, starts listening for "auth", so both frames must not
// reach it in one TCP read (Node's server never writes them back to back
// either: its WebSocket transport waits for each write's callback). Anything
// the socket answers before the timer fires sends "auth" first, so "auth" is
// always the first event.
func (a *app) officialHandlers(s *sockets.Socket, main bool) {
	var once sync.Once
	sendAuth := func() { once.Do(func() { _ = s.Emit("auth", s.Auth()) }) }
	time.AfterFunc(authDelay, sendAuth)
	if !main {
		return
	}
	s.On("message", func(s *sockets.Socket, ev *sockets.Event) {
		sendAuth()
		_ = s.Emit("message-back", ev.Values()...)
	})
	s.On("message-with-ack", func(s *sockets.Socket, ev *sockets.Event) {
		sendAuth()
		_ = ev.Ack.Reply(ev.Values()...)
	})
}

// tokenMiddleware admits only CONNECT auth {"token":"letmein"}.
func tokenMiddleware(s *sockets.Socket) error {
	var auth struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(s.Auth(), &auth) == nil && auth.Token == "letmein" {
		return nil
	}
	return &sockets.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "invalid token"}}
}

func (a *app) setReason(id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if reason == "" {
		delete(a.reasons, id)
		return
	}
	if len(a.reasons) >= maxReasons {
		clear(a.reasons)
	}
	a.reasons[id] = reason
}

func (a *app) reason(id string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.reasons[id]
	return r, ok
}

// arg decodes argument i of ev into dst and reports success.
func arg(ev *sockets.Event, i int, dst any) bool {
	if ev.Len() <= i {
		return false
	}
	return ev.Decode(append(make([]any, i), dst)...) == nil
}

// value returns argument i of ev ready to be sent again (binary kept), or nil.
func value(ev *sockets.Event, i int) any {
	v := ev.Values()
	if i < len(v) {
		return v[i]
	}
	return nil
}

// reply answers the event's acknowledgement if the client asked for one.
func reply(ev *sockets.Event, args ...any) {
	if ev.Ack.Wanted() {
		_ = ev.Ack.Reply(args...)
	}
}

// interopHandlers installs handler set H on a socket of /, /chat or /secure.
func (a *app) interopHandlers(s *sockets.Socket) {
	a.setReason(s.ID(), "") // connected again (a recovered session keeps its id)
	s.OnDisconnect(func(s *sockets.Socket, reason string) { a.setReason(s.ID(), reason) })
	nsp := s.Namespace()

	s.On("echo-ack", func(s *sockets.Socket, ev *sockets.Event) {
		reply(ev, ev.Values()...)
	})
	s.On("echo", func(s *sockets.Socket, ev *sockets.Event) {
		_ = s.Emit("echo-back", ev.Values()...)
	})
	s.On("whoami", func(s *sockets.Socket, ev *sockets.Event) {
		rooms := slices.DeleteFunc(s.Rooms(), func(r string) bool { return r == s.ID() })
		if rooms == nil {
			rooms = []string{}
		}
		reply(ev, map[string]any{
			"id":        s.ID(),
			"nsp":       nsp.Name(),
			"auth":      s.Auth(),
			"rooms":     rooms,
			"recovered": s.Recovered(),
		})
	})
	s.On("join", func(s *sockets.Socket, ev *sockets.Event) {
		var room string
		if !arg(ev, 0, &room) {
			return
		}
		s.Join(room)
		reply(ev, room)
	})
	s.On("leave", func(s *sockets.Socket, ev *sockets.Event) {
		var room string
		if !arg(ev, 0, &room) {
			return
		}
		s.Leave(room)
		reply(ev, room)
	})
	s.On("broadcast", func(s *sockets.Socket, ev *sockets.Event) {
		_ = s.Broadcast().Emit("broadcast-message", map[string]any{"from": s.ID(), "data": value(ev, 0)})
		reply(ev)
	})
	s.On("broadcast-room", func(s *sockets.Socket, ev *sockets.Event) {
		var room string
		if !arg(ev, 0, &room) {
			return
		}
		_ = s.To(room).Emit("room-message", map[string]any{"from": s.ID(), "room": room, "data": value(ev, 1)})
		reply(ev)
	})
	s.On("to-id", func(s *sockets.Socket, ev *sockets.Event) {
		var id string
		if !arg(ev, 0, &id) {
			return
		}
		_ = nsp.To(id).Emit("direct-message", map[string]any{"from": s.ID(), "data": value(ev, 1)})
		reply(ev)
	})
	s.On("request-ack", func(s *sockets.Socket, ev *sockets.Event) {
		tag := value(ev, 0)
		_ = s.EmitWithAckFunc("ack-me", requestAckTimeout, func(r *sockets.Reply, err error) {
			if err != nil {
				msg := "operation has timed out"
				if !errors.Is(err, sockets.ErrAckTimeout) {
					msg = err.Error()
				}
				_ = s.Emit("ack-result", map[string]any{"tag": tag, "error": msg})
				return
			}
			var answer any
			if v := r.Values(); len(v) > 0 {
				answer = v[0]
			}
			_ = s.Emit("ack-result", map[string]any{"tag": tag, "reply": answer})
		}, tag)
	})
	s.On("server-disconnect", func(s *sockets.Socket, ev *sockets.Event) {
		s.Disconnect(false)
	})
	s.On("drop", func(s *sockets.Socket, ev *sockets.Event) {
		s.CloseConn()
	})
	s.On("disconnect-reason", func(s *sockets.Socket, ev *sockets.Event) {
		var id string
		if !arg(ev, 0, &id) {
			reply(ev, nil)
			return
		}
		if r, ok := a.reason(id); ok {
			reply(ev, r)
			return
		}
		reply(ev, nil)
	})
	s.On("csr-drop", func(s *sockets.Socket, ev *sockets.Event) {
		var req struct {
			Count int    `json:"count"`
			Room  string `json:"room"`
		}
		if !arg(ev, 0, &req) {
			return
		}
		req.Count = min(max(req.Count, 0), maxCSRCount)
		id := s.ID()
		// csr-before goes through the adapter, so it carries an offset the client
		// presents when it recovers; CloseConn flushes it before closing.
		_ = s.Emit("csr-before", map[string]any{"id": id})
		s.CloseConn()
		for i := 1; i <= req.Count; i++ {
			_ = nsp.To(id).Emit("csr-missed", map[string]any{"seq": i, "via": "id"})
		}
		if req.Room != "" {
			_ = nsp.To(req.Room).Emit("csr-missed", map[string]any{"seq": req.Count + 1, "via": "room"})
		}
	})
}
