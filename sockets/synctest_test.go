package sockets

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// memPoll drives the server over Engine.IO long-polling through httptest recorders: no
// network, so everything runs inside a synctest bubble with a fake clock.
type memPoll struct {
	t   testing.TB
	srv *Server
	sid string
}

func (m *memPoll) do(method, body string) (int, string) {
	u := "/socket.io/?EIO=4&transport=polling"
	if m.sid != "" {
		u += "&sid=" + m.sid
	}
	r := httptest.NewRequest(method, u, strings.NewReader(body))
	w := httptest.NewRecorder()
	m.srv.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func memHandshake(t testing.TB, srv *Server) *memPoll {
	t.Helper()
	m := &memPoll{t: t, srv: srv}
	code, body := m.do(http.MethodGet, "")
	var hs struct{ SID string }
	if code != http.StatusOK || json.Unmarshal([]byte(strings.TrimPrefix(body, "0")), &hs) != nil {
		t.Fatalf("handshake %d %q", code, body)
	}
	m.sid = hs.SID
	return m
}

// post sends Socket.IO packets (joined with the record separator).
func (m *memPoll) post(pkts ...string) {
	m.t.Helper()
	for i := range pkts {
		pkts[i] = "4" + pkts[i]
	}
	if code, body := m.do(http.MethodPost, strings.Join(pkts, "\x1e")); code != http.StatusOK {
		m.t.Fatalf("POST: %d %q", code, body)
	}
}

// poll returns the packets of one GET (which must not block: call it when data is queued).
func (m *memPoll) poll() []string {
	m.t.Helper()
	code, body := m.do(http.MethodGet, "")
	if code != http.StatusOK {
		m.t.Fatalf("GET: %d %q", code, body)
	}
	return strings.Split(body, "\x1e")
}

func shutdown(t testing.TB, srv *Server) {
	t.Helper()
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConnectTimeoutFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(Config{ConnectTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		memHandshake(t, srv)
		connected := memHandshake(t, srv)
		connected.post("0")
		time.Sleep(4999 * time.Millisecond)
		if n := srv.Count(); n != 2 {
			t.Fatalf("%d sessions before the timeout", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := srv.Count(); n != 1 {
			t.Fatalf("%d sessions after the timeout, want the connected one", n)
		}
		shutdown(t, srv)
	})
}

func TestAckTimeoutFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(Config{AckTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sockets := make(chan *Socket, 1)
		srv.OnConnection(func(s *Socket) { sockets <- s })
		m := memHandshake(t, srv)
		m.post("0")
		s := <-sockets
		results := make(chan error, 2)
		if err := s.EmitWithAckFunc("q", 0, func(r *Reply, err error) { results <- err }, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.EmitWithAckFunc("q", 3*time.Second, func(r *Reply, err error) { results <- err }, 2); err != nil {
			t.Fatal(err)
		}
		if got := m.poll(); len(got) != 3 || got[1] != `420["q",1]` || got[2] != `421["q",2]` {
			t.Fatalf("poll %q", got)
		}
		time.Sleep(3*time.Second - time.Millisecond)
		synctest.Wait()
		if len(results) != 0 {
			t.Fatal("ack timed out early")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err := <-results; !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("explicit timeout: %v", err)
		}
		time.Sleep(7*time.Second - time.Millisecond)
		synctest.Wait()
		if len(results) != 0 {
			t.Fatal("default ack timeout fired early")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err := <-results; !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("default timeout: %v", err)
		}
		shutdown(t, srv)
	})
}

func TestRecoveryWindowEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		away      time.Duration
		recovered bool
	}{
		{59 * time.Second, true},
		{61 * time.Second, false},
	} {
		t.Run(fmt.Sprint(tt.away), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, err := New(Config{
					Recovery:    Recovery{Enabled: true, Window: time.Minute},
					PingTimeout: time.Hour, PingInterval: time.Hour,
				})
				if err != nil {
					t.Fatal(err)
				}
				sockets := make(chan *Socket, 2)
				srv.OnConnection(func(s *Socket) { sockets <- s })
				m := memHandshake(t, srv)
				m.post("0")
				s := <-sockets
				_ = s.Emit("e")
				got := m.poll()
				var ack struct{ SID, PID string }
				if err := json.Unmarshal([]byte(strings.TrimPrefix(got[0], "40")), &ack); err != nil {
					t.Fatalf("connect ack %q: %v", got[0], err)
				}
				off := lastArg(t, got[1][1:])
				s.CloseConn()
				synctest.Wait()
				time.Sleep(tt.away)
				_ = srv.To(ack.SID).Emit("missed")

				m2 := memHandshake(t, srv)
				m2.post(fmt.Sprintf(`0{"pid":%q,"offset":%q}`, ack.PID, off))
				s2 := <-sockets
				if s2.Recovered() != tt.recovered || (s2.ID() == ack.SID) != tt.recovered {
					t.Fatalf("after %v: recovered %v, same id %v", tt.away, s2.Recovered(), s2.ID() == ack.SID)
				}
				got = m2.poll()
				if tt.recovered && (len(got) != 2 || !strings.HasPrefix(got[0], `42["missed","`)) {
					t.Fatalf("replay %q", got)
				}
				shutdown(t, srv)
			})
		})
	}
}
