package sockets

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/sockets/parser"
)

// lastArg returns the last argument of an EVENT packet text (after the Socket.IO header).
func lastArg(t testing.TB, pkt string) string {
	t.Helper()
	i := strings.IndexByte(pkt, '[')
	args, err := parser.SplitArray([]byte(pkt[i:]))
	if err != nil {
		t.Fatalf("packet %q: %v", pkt, err)
	}
	var off string
	if err := json.Unmarshal(args[len(args)-1], &off); err != nil {
		t.Fatalf("last argument of %q is not an offset: %v", pkt, err)
	}
	return off
}

func TestRecovery(t *testing.T) {
	srv, url := newTestServer(t, Config{Recovery: Recovery{Enabled: true, Window: time.Minute}})
	var mwCalls atomic.Int32
	srv.Use(func(s *Socket) error {
		mwCalls.Add(1)
		return nil
	})
	ch := make(chan *Socket, 2)
	srv.OnConnection(func(s *Socket) { ch <- s })

	c := dial(t, url)
	sid, pid := c.connect("/", "")
	if pid == "" {
		t.Fatal("CONNECT ack without pid")
	}
	s := <-ch
	if s.Recovered() {
		t.Fatal("fresh socket marked recovered")
	}
	s.Join("room")
	s.SetData("state")
	if err := s.Emit("first", 1); err != nil {
		t.Fatal(err)
	}
	off := lastArg(t, c.expectPrefix(`2["first",1,"`))

	reason := make(chan string, 1)
	s.OnDisconnect(func(s *Socket, r string) { reason <- r })
	s.CloseConn()
	c.expectClosed()
	if r := <-reason; r != ReasonForcedClose {
		t.Fatalf("reason %q", r)
	}
	// While away: to the id room, to a room it was in, to a room it was not in, volatile.
	for i := 1; i <= 3; i++ {
		if err := srv.To(sid).Emit("missed", i); err != nil {
			t.Fatal(err)
		}
	}
	_ = srv.To("room").Emit("missed", 4)
	_ = srv.To("other").Emit("not-for-you")
	_ = srv.Volatile().Emit("volatile")
	_ = srv.Except("room").Emit("excluded")
	_ = srv.Emit("missed", 5)

	c2 := dial(t, url)
	c2.send(fmt.Sprintf(`0{"pid":%q,"offset":%q}`, pid, off))
	for i := 1; i <= 5; i++ {
		c2.expectPrefix(fmt.Sprintf(`2["missed",%d,"`, i))
	}
	sid2, pid2 := c2.connect2()
	if sid2 != sid || pid2 != pid {
		t.Fatalf("recovered as %s/%s, want %s/%s", sid2, pid2, sid, pid)
	}
	s2 := <-ch
	if !s2.Recovered() || s2.ID() != sid || s2.Data() != "state" {
		t.Fatalf("recovered %v id %s data %v", s2.Recovered(), s2.ID(), s2.Data())
	}
	if !slices.Equal(s2.Rooms(), sortedStrings(sid, "room")) {
		t.Fatalf("rooms %v", s2.Rooms())
	}
	if n := mwCalls.Load(); n != 1 {
		t.Fatalf("middleware ran %d times, want 1 (skipped on recovery)", n)
	}
	// Live delivery resumes once, in order.
	_ = srv.To("room").Emit("live")
	c2.expectPrefix(`2["live","`)
	c2.expectSilence(50 * time.Millisecond)

	// The session is gone once recovered: the same pid and offset get a fresh session.
	c3 := dial(t, url)
	sid3, _ := c3.connect("/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, off))
	if sid3 == sid {
		t.Fatal("session recovered twice")
	}
	if s3 := <-ch; s3.Recovered() {
		t.Fatal("second recovery")
	}
}

// connect2 reads the CONNECT acknowledgement of "/" after a CONNECT was sent.
func (c *tclient) connect2() (sid, pid string) {
	c.t.Helper()
	got := c.expectPrefix("0{")
	var ack struct{ SID, PID string }
	if err := json.Unmarshal([]byte(got[1:]), &ack); err != nil {
		c.t.Fatal(err)
	}
	return ack.SID, ack.PID
}

func TestRecoveryNotForIntentionalDisconnect(t *testing.T) {
	srv, url := newTestServer(t, Config{Recovery: Recovery{Enabled: true}})
	ch := make(chan *Socket, 2)
	srv.OnConnection(func(s *Socket) { ch <- s })
	c := dial(t, url)
	sid, pid := c.connect("/", "")
	s := <-ch
	_ = s.Emit("e")
	off := lastArg(t, c.expectPrefix(`2["e","`))
	c.send("1") // client namespace disconnect: not recoverable
	c.send(fmt.Sprintf(`0{"pid":%q,"offset":%q}`, pid, off))
	sid2, _ := c.connect2()
	if sid2 == sid || (<-ch).Recovered() {
		t.Fatal("an intentional disconnection was recovered")
	}
}

func TestRecoveryOffWithoutOffsets(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	srv.OnConnection(func(s *Socket) { _ = s.Emit("e", 1) })
	c := dial(t, url)
	c.send("0")
	ack := c.expectPrefix("0{")
	if strings.Contains(ack, "pid") {
		t.Fatalf("pid without recovery: %s", ack)
	}
	c.expect(`2["e",1]`)
}

// TestRecoveryWindow checks the in-memory adapter's expiry with a fake clock.
func TestRecoveryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(Config{Recovery: Recovery{Enabled: true, Window: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		a := srv.Of("/").Adapter()
		emit := func() string {
			p := &parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["x"]`)}
			if err := a.Broadcast(p, BroadcastOptions{}); err != nil {
				t.Fatal(err)
			}
			var off string
			args, _ := parser.SplitArray(p.Data)
			_ = json.Unmarshal(args[len(args)-1], &off)
			return off
		}
		off := emit()
		a.PersistSession(&Session{SID: "s1", PID: "p1", Rooms: []string{"s1"}})
		a.PersistSession(&Session{SID: "s2", PID: "p2", Rooms: []string{"s2"}})
		time.Sleep(30 * time.Second)
		off2 := emit()
		emit()
		sess, err := a.RestoreSession("p1", off)
		if err != nil || sess == nil || sess.SID != "s1" {
			t.Fatalf("within the window: %+v %v", sess, err)
		}
		missed, _ := a.MissedPackets(sess)
		if len(missed) != 2 || missed[0].Seq >= missed[1].Seq {
			t.Fatalf("missed %d packets", len(missed))
		}
		if s, _ := a.RestoreSession("p1", off); s != nil {
			t.Fatal("restored twice")
		}
		if s, _ := a.RestoreSession("p2", "zzz"); s != nil {
			t.Fatal("unknown offset accepted")
		}
		time.Sleep(31 * time.Second)
		emit()
		if s, _ := a.RestoreSession("p2", off2); s != nil {
			t.Fatal("session restored after the window")
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
