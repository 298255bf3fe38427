package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/sockets"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type opEvent struct {
	Doc    string          `json:"doc"`
	Rev    uint64          `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Client string          `json:"client"`
	Seq    uint64          `json:"seq"`
	User   string          `json:"user"`
	Time   time.Time       `json:"time"`
}

func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

func TestAttachNeedsHub(t *testing.T) {
	srv, err := sockets.New(sockets.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if _, err := session.Attach(srv, session.Config{}); !errors.Is(err, session.ErrNoHub) {
		t.Fatalf("Attach without hub: %v, want ErrNoHub", err)
	}
	if _, err := session.Attach(nil, session.Config{}); !errors.Is(err, session.ErrNoServer) {
		t.Fatalf("Attach without server: %v, want ErrNoServer", err)
	}
}

// TestJoinOpAckShapes walks the basic life of a document: join (text form),
// op, ack, broadcast to the other member only, with the exact shapes.
func TestJoinOpAckShapes(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := e.client(), e.client()

	ja := a.mustOK("doc:join", obj("doc", "notes", "client", "ann", "user", obj("name", "Ann", "color", "#abc")))
	if ja.Rev != 0 || ja.Text == nil || *ja.Text != "" || ja.Members == nil || len(ja.Members) != 0 {
		t.Fatalf("first join ack: %s", ja.raw)
	}
	jb := b.mustOK("doc:join", obj("doc", "notes", "client", "bob"))
	if len(jb.Members) != 1 || jb.Members[0].Client != "ann" || jb.Members[0].User != (session.User{Name: "Ann", Color: "#abc"}) {
		t.Fatalf("members in bob's ack: %s", jb.raw)
	}
	joined := decode[map[string]any](t, a.next("doc:member"))
	if joined["client"] != "bob" || joined["joined"] != true || joined["doc"] != "notes" {
		t.Fatalf("doc:member: %v", joined)
	}
	user := joined["user"].(map[string]any)
	if user["name"] != "anonymous" || !strings.HasPrefix(user["color"].(string), "#") {
		t.Fatalf("default user: %v", user)
	}

	op := a.mustOK("doc:op", obj("doc", "notes", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["héllo 😀"]`)))
	if op.Rev != 1 || string(op.raw) != `{"ok":true,"rev":1}` {
		t.Fatalf("op ack: %s", op.raw)
	}
	rec := decode[opEvent](t, b.next("doc:op"))
	if rec.Doc != "notes" || rec.Rev != 1 || string(rec.Op) != `["héllo 😀"]` || rec.Client != "ann" || rec.Seq != 1 || rec.User != "Ann" || time.Since(rec.Time) > time.Minute {
		t.Fatalf("broadcast: %+v", rec)
	}
	a.quiet("doc:op", 200*time.Millisecond) // the author never gets its own op back

	// A join with the document already written gets its text.
	c := e.client()
	jc := c.mustOK("doc:join", obj("doc", "notes", "client", "cat"))
	if jc.Rev != 1 || *jc.Text != "héllo 😀" || len(jc.Members) != 2 {
		t.Fatalf("third join: %s", jc.raw)
	}
	// Joining again is idempotent: a fresh ack.
	jc2 := c.mustOK("doc:join", obj("doc", "notes", "client", "cat"))
	if jc2.Rev != 1 || *jc2.Text != "héllo 😀" || len(jc2.Members) != 2 {
		t.Fatalf("second join of the same socket: %s", jc2.raw)
	}
	if st := e.svc.Stats(); st.Sockets != 3 || st.Members != 3 || st.Documents != 1 || st.Ops != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if got := c.mustOK("doc:leave", obj("doc", "notes")); string(got.raw) != `{"ok":true}` {
		t.Fatalf("leave ack: %s", got.raw)
	}
	left := decode[map[string]any](t, a.next("doc:member"))
	for left["client"] != "cat" || left["joined"] != false { // bob's and cat's joins came first
		left = decode[map[string]any](t, a.next("doc:member"))
	}
	if e.svc.Stats().Members != 2 {
		t.Fatalf("members after leave: %+v", e.svc.Stats())
	}
	if !strings.Contains(e.logs.String(), `"message":"joined"`) {
		t.Fatalf("no join log line")
	}
}

// TestResume checks doc:join with rev: the ops after it, or the text when
// the log holds more than 1000 of them.
func TestResume(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if _, err := e.hub.Submit(ctx, collab.Submission{Doc: "d", Client: "w", Seq: uint64(i), BaseRev: uint64(i - 1), Op: raw(opAt(i-1, fmt.Sprint(i)))}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client()
	j := c.mustOK("doc:join", obj("doc", "d", "client", "r", "rev", 2))
	if j.Rev != 5 || j.Text != nil || len(j.Ops) != 3 {
		t.Fatalf("resume ack: %s", j.raw)
	}
	for i, o := range j.Ops {
		r := decode[opEvent](t, o)
		if r.Rev != uint64(3+i) || r.Client != "w" || r.Seq != uint64(3+i) || string(r.Op) != opAt(2+i, fmt.Sprint(3+i)) {
			t.Fatalf("op %d: %s", i, o)
		}
	}
	// At the head: no ops.
	j = c.mustOK("doc:join", obj("doc", "d", "client", "r", "rev", 5))
	if j.Rev != 5 || j.Ops == nil || len(j.Ops) != 0 {
		t.Fatalf("resume at head: %s", j.raw)
	}
	// Ahead of the head (a deleted document): the text.
	j = c.mustOK("doc:join", obj("doc", "d", "client", "r", "rev", 9))
	if j.Rev != 5 || j.Text == nil || *j.Text != "12345" {
		t.Fatalf("resume ahead: %s", j.raw)
	}
	// More than 1000 ops behind: the text.
	// 1005 more, 201 at a time on one base (one group commit each).
	for base := 5; base < 1010; base += 201 {
		var wg sync.WaitGroup
		for i := base + 1; i <= base+201; i++ {
			wg.Go(func() {
				if _, err := e.hub.Submit(ctx, collab.Submission{Doc: "d", Client: "w", Seq: uint64(i), BaseRev: uint64(base), Op: raw(`["x"]`)}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	j = c.mustOK("doc:join", obj("doc", "d", "client", "r", "rev", 5))
	if j.Rev != 1010 || j.Text == nil || len(*j.Text) != 1010 {
		t.Fatalf("resume far behind: rev %d text %v", j.Rev, j.Text != nil)
	}
	j = c.mustOK("doc:join", obj("doc", "d", "client", "r", "rev", 10))
	if j.Rev != 1010 || len(j.Ops) != 1000 {
		t.Fatalf("resume 1000 behind: rev %d, %d ops", j.Rev, len(j.Ops))
	}
}

// opAt is the op inserting s at pos.
func opAt(pos int, s string) string {
	if pos == 0 {
		return fmt.Sprintf(`[%q]`, s)
	}
	return fmt.Sprintf(`[%d,%q]`, pos, s)
}

// TestResubmitAfterDrop: an op whose ack was lost with the connection is
// applied once; the resubmission gets the first revision and no broadcast.
func TestResubmitAfterDrop(t *testing.T) {
	e := newEnv(t, envOpts{})
	watcher := e.client()
	watcher.mustOK("doc:join", obj("doc", "d", "client", "watch"))
	a := e.client()
	a.mustOK("doc:join", obj("doc", "d", "client", "ann"))
	if err := a.c.Emit("doc:op", obj("doc", "d", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["once"]`))); err != nil {
		t.Fatal(err)
	}
	a.c.Close() // no ack ever reaches this connection
	if r := decode[opEvent](t, watcher.next("doc:op")); r.Rev != 1 || r.Client != "ann" {
		t.Fatalf("broadcast: %+v", r)
	}
	a2 := e.client()
	j := a2.mustOK("doc:join", obj("doc", "d", "client", "ann", "rev", 0))
	if len(j.Ops) != 1 || decode[opEvent](t, j.Ops[0]).Seq != 1 {
		t.Fatalf("resume: %s", j.raw)
	}
	got := a2.mustOK("doc:op", obj("doc", "d", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["once"]`)))
	if got.Rev != 1 {
		t.Fatalf("resubmission ack: %s", got.raw)
	}
	watcher.quiet("doc:op", 200*time.Millisecond)
	if rev, text := e.text("d"); rev != 1 || text != "once" {
		t.Fatalf("text: %d %q", rev, text)
	}
}

// TestResubmitAfterRestart: the same across a server restart on the same
// data directory.
func TestResubmitAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{dir: dir})
	a := e.client()
	a.mustOK("doc:join", obj("doc", "d", "client", "ann"))
	a.mustOK("doc:op", obj("doc", "d", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["abc"]`)))
	if err := a.c.Emit("doc:op", obj("doc", "d", "client", "ann", "seq", 2, "rev", 1, "op", raw(`[3,"def"]`))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rev, _ := e.text("d"); rev != 2; rev, _ = e.text("d") {
		if time.Now().After(deadline) {
			t.Fatal("op 2 never committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.stop()

	e2 := newEnv(t, envOpts{dir: dir})
	a2 := e2.client()
	j := a2.mustOK("doc:join", obj("doc", "d", "client", "ann", "rev", 1))
	if j.Rev != 2 || len(j.Ops) != 1 {
		t.Fatalf("resume after restart: %s", j.raw)
	}
	if got := a2.mustOK("doc:op", obj("doc", "d", "client", "ann", "seq", 2, "rev", 1, "op", raw(`[3,"def"]`))); got.Rev != 2 {
		t.Fatalf("resubmission after restart: %s", got.raw)
	}
	if rev, text := e2.text("d"); rev != 2 || text != "abcdef" {
		t.Fatalf("text: %d %q", rev, text)
	}
}

// TestSecondSocketReplacesClient: a new socket joining with a client id that
// is already a member takes over; the old one stops receiving events.
func TestSecondSocketReplacesClient(t *testing.T) {
	e := newEnv(t, envOpts{})
	old, neu, w := e.client(), e.client(), e.client()
	old.mustOK("doc:join", obj("doc", "d", "client", "ann"))
	neu.mustOK("doc:join", obj("doc", "d", "client", "ann"))
	w.mustOK("doc:join", obj("doc", "d", "client", "wes"))
	w.mustOK("doc:op", obj("doc", "d", "client", "wes", "seq", 1, "rev", 0, "op", raw(`["x"]`)))
	if r := decode[opEvent](t, neu.next("doc:op")); r.Rev != 1 {
		t.Fatalf("new socket: %+v", r)
	}
	old.quiet("doc:op", 200*time.Millisecond)
	if a := old.call("doc:op", obj("doc", "d", "client", "ann", "seq", 1, "rev", 1, "op", raw(`["y"]`))); a.code() != "forbidden" {
		t.Fatalf("op from the replaced socket: %s", a.raw)
	}
	if st := e.svc.Stats(); st.Members != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestPresence: forwarded to the others, listed in later join acks, and
// dropped with doc:member joined:false on disconnect.
func TestPresence(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := e.client(), e.client()
	a.mustOK("doc:join", obj("doc", "d", "client", "ann", "user", obj("name", "Ann")))
	b.mustOK("doc:join", obj("doc", "d", "client", "bob", "user", obj("name", "Bob", "color", "#123456")))
	if got := a.mustOK("doc:presence", obj("doc", "d", "rev", 0, "sel", []any{obj("anchor", 0, "head", 0)})); string(got.raw) != `{"ok":true}` {
		t.Fatalf("presence ack: %s", got.raw)
	}
	p := decode[map[string]any](t, b.next("doc:presence"))
	want := `{"client":"ann","doc":"d","rev":0,"sel":[{"anchor":0,"head":0}],"user":{"color":"` + p["user"].(map[string]any)["color"].(string) + `","name":"Ann"}}`
	if js, _ := json.Marshal(p); string(js) != want {
		t.Fatalf("presence event: %s", js)
	}
	a.quiet("doc:presence", 100*time.Millisecond)

	c := e.client()
	j := c.mustOK("doc:join", obj("doc", "d", "client", "cat"))
	var ann *member
	for i := range j.Members {
		if j.Members[i].Client == "ann" {
			ann = &j.Members[i]
		}
	}
	if len(j.Members) != 2 || ann == nil || ann.Rev == nil || *ann.Rev != 0 || len(ann.Sel) != 1 {
		t.Fatalf("members with presence: %s", j.raw)
	}
	if m := decode[map[string]any](t, b.next("doc:member")); m["client"] != "cat" || m["joined"] != true {
		t.Fatalf("member event: %v", m)
	}
	a.c.Close()
	for _, tc := range []*tclient{b, c} {
		m := decode[map[string]any](t, tc.next("doc:member"))
		for m["client"] != "ann" {
			m = decode[map[string]any](t, tc.next("doc:member"))
		}
		if m["joined"] != false || m["user"].(map[string]any)["name"] != "Ann" {
			t.Fatalf("leave event: %v", m)
		}
	}
	// Presence needs a membership.
	if got := e.client().call("doc:presence", obj("doc", "d", "rev", 0, "sel", []any{})); got.code() != "forbidden" {
		t.Fatalf("presence without join: %s", got.raw)
	}
}

// TestHistoryRevisionDiffRestore: the read events return what was written;
// restore makes a new revision broadcast to everyone, the requester included.
func TestHistoryRevisionDiffRestore(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := e.client(), e.client()
	a.mustOK("doc:join", obj("doc", "h", "client", "ann", "user", obj("name", "Ann")))
	b.mustOK("doc:join", obj("doc", "h", "client", "bob"))
	a.mustOK("doc:op", obj("doc", "h", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["hello"]`)))
	a.mustOK("doc:op", obj("doc", "h", "client", "ann", "seq", 2, "rev", 1, "op", raw(`[5," world"]`)))
	a.mustOK("doc:op", obj("doc", "h", "client", "ann", "seq", 3, "rev", 2, "op", raw(`[-5]`)))

	// A socket that has not joined may read (view access).
	r := e.client()
	h := r.mustOK("doc:history", obj("doc", "h"))
	var hist struct {
		Revs []struct {
			Rev      uint64
			Client   string
			User     string
			Time     time.Time
			Ins, Del int
		}
	}
	if err := json.Unmarshal(h.raw, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Revs) != 3 || hist.Revs[0].Rev != 3 || hist.Revs[0].Del != 5 || hist.Revs[2].Ins != 5 || hist.Revs[1].User != "Ann" || hist.Revs[1].Client != "ann" || hist.Revs[0].Time.Location() != time.UTC {
		t.Fatalf("history: %s", h.raw)
	}
	if !strings.Contains(string(h.raw), `Z"`) {
		t.Fatalf("history times are not UTC: %s", h.raw)
	}
	h = r.mustOK("doc:history", obj("doc", "h", "before", 3, "limit", 1))
	if err := json.Unmarshal(h.raw, &hist); err != nil || len(hist.Revs) != 1 || hist.Revs[0].Rev != 2 {
		t.Fatalf("history page: %s", h.raw)
	}
	if rv := r.mustOK("doc:revision", obj("doc", "h", "rev", 2)); rv.Rev != 2 || *rv.Text != "hello world" {
		t.Fatalf("revision: %s", rv.raw)
	}
	if d := r.mustOK("doc:diff", obj("doc", "h", "from", 1, "to", 2)); string(d.raw) != `{"ok":true,"diffs":[[0,"hello"],[1," world"]]}` {
		t.Fatalf("diff: %s", d.raw)
	}
	// Restore needs a membership.
	if got := r.call("doc:restore", obj("doc", "h", "rev", 2)); got.code() != "forbidden" {
		t.Fatalf("restore without join: %s", got.raw)
	}
	got := b.mustOK("doc:restore", obj("doc", "h", "rev", 2))
	if got.Rev != 4 {
		t.Fatalf("restore ack: %s", got.raw)
	}
	for _, tc := range []*tclient{a, b} {
		rec := decode[opEvent](t, tc.next("doc:op"))
		for rec.Rev < 4 {
			rec = decode[opEvent](t, tc.next("doc:op"))
		}
		if rec.Rev != 4 || rec.Client == "bob" {
			t.Fatalf("restore broadcast: %+v", rec)
		}
	}
	if rev, text := e.text("h"); rev != 4 || text != "hello world" {
		t.Fatalf("after restore: %d %q", rev, text)
	}
}

// TestAccess: a viewer may join and read, not edit; a document outside the
// token's patterns is forbidden; a bad token is refused at CONNECT.
func TestAccess(t *testing.T) {
	auth := func(raw json.RawMessage) (session.Identity, error) {
		var a struct{ Token string }
		if raw != nil {
			_ = json.Unmarshal(raw, &a)
		}
		switch a.Token {
		case "viewer":
			return session.Identity{User: "vera", Access: func(doc string) session.Access { return session.AccessView }}, nil
		case "editor":
			return session.Identity{User: "eddie", Access: func(doc string) session.Access {
				if strings.HasPrefix(doc, "team-") {
					return session.AccessEdit
				}
				return session.AccessNone
			}}, nil
		case "":
			return session.Identity{}, errors.New("missing token")
		}
		return session.Identity{}, errors.New("bad signature")
	}
	e := newEnv(t, envOpts{auth: auth})
	if _, err := e.dial(nil); !errors.Is(err, sioclient.ErrConnectRefused) || !strings.Contains(err.Error(), `{"message":"unauthorized","data":{"code":"unauthorized","reason":"missing token"}}`) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := e.dial(obj("token", "forged")); !errors.Is(err, sioclient.ErrConnectRefused) || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("bad token: %v", err)
	}
	ed, err := e.dial(obj("token", "editor"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.dial(obj("token", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ed.call("doc:join", obj("doc", "private", "client", "e1")); got.code() != "forbidden" {
		t.Fatalf("join outside patterns: %s", got.raw)
	}
	if got := ed.call("doc:history", obj("doc", "private")); got.code() != "forbidden" {
		t.Fatalf("history outside patterns: %s", got.raw)
	}
	ed.mustOK("doc:join", obj("doc", "team-a", "client", "e1", "user", obj("name", "spoofed")))
	j := v.mustOK("doc:join", obj("doc", "team-a", "client", "v1"))
	if len(j.Members) != 1 || j.Members[0].User.Name != "eddie" {
		t.Fatalf("the token's name wins: %s", j.raw)
	}
	if got := v.call("doc:op", obj("doc", "team-a", "client", "v1", "seq", 1, "rev", 0, "op", raw(`["x"]`))); got.code() != "forbidden" {
		t.Fatalf("viewer op: %s", got.raw)
	}
	if got := v.call("doc:restore", obj("doc", "team-a", "rev", 0)); got.code() != "forbidden" {
		t.Fatalf("viewer restore: %s", got.raw)
	}
	v.mustOK("doc:presence", obj("doc", "team-a", "rev", 0, "sel", []any{}))
	ed.mustOK("doc:op", obj("doc", "team-a", "client", "e1", "seq", 1, "rev", 0, "op", raw(`["x"]`)))
	if r := decode[opEvent](t, v.next("doc:op")); r.User != "eddie" {
		t.Fatalf("viewer broadcast: %+v", r)
	}
	v.mustOK("doc:history", obj("doc", "team-a"))
	if rev, text := e.text("team-a"); rev != 1 || text != "x" {
		t.Fatalf("text: %d %q", rev, text)
	}
}

// TestLimits: rate_limited, too many documents per socket, too many members.
func TestLimits(t *testing.T) {
	e := newEnv(t, envOpts{limits: session.Limits{OpsPerSecond: 0.001, OpsBurst: 3, DocsPerSocket: 2, MembersPerDoc: 2}})
	a, b, c := e.client(), e.client(), e.client()
	a.mustOK("doc:join", obj("doc", "d1", "client", "a"))
	a.mustOK("doc:join", obj("doc", "d2", "client", "a"))
	if got := a.call("doc:join", obj("doc", "d3", "client", "a")); got.code() != "too_large" || !strings.Contains(got.Error.Message, "documents") {
		t.Fatalf("third document: %s", got.raw)
	}
	a.mustOK("doc:join", obj("doc", "d2", "client", "a")) // a rejoin is no new document
	b.mustOK("doc:join", obj("doc", "d1", "client", "b"))
	if got := c.call("doc:join", obj("doc", "d1", "client", "c")); got.code() != "too_large" || !strings.Contains(got.Error.Message, "members") {
		t.Fatalf("third member: %s", got.raw)
	}
	for i := 1; i <= 3; i++ {
		a.mustOK("doc:op", obj("doc", "d1", "client", "a", "seq", i, "rev", i-1, "op", raw(`["x"]`)))
	}
	got := a.call("doc:op", obj("doc", "d1", "client", "a", "seq", 4, "rev", 3, "op", raw(`["x"]`)))
	if got.code() != "rate_limited" {
		t.Fatalf("fourth op: %s", got.raw)
	}
	if got := a.call("doc:restore", obj("doc", "d1", "rev", 1)); got.code() != "rate_limited" {
		t.Fatalf("restore over the limit: %s", got.raw)
	}
	// The bucket is per socket: b still has its burst.
	b.mustOK("doc:op", obj("doc", "d1", "client", "b", "seq", 1, "rev", 3, "op", raw(`["y"]`)))
	if st := e.svc.Stats(); st.RateLimited != 2 || st.Errors != 4 || st.Ops != 4 || st.Documents != 2 || st.Members != 3 {
		t.Fatalf("stats: %+v", st)
	}
	if rev, text := e.text("d1"); rev != 4 || text != "yxxx" {
		t.Fatalf("text: %d %q", rev, text)
	}
	// Presence, joins and leaves share a budget: 60 at once, then 30/s.
	// 300 updates sent without waiting arrive within far less than 8 s.
	var limited atomic.Int32
	var acks sync.WaitGroup
	for range 300 {
		acks.Add(1)
		err := b.c.EmitAck(func(args []byte) {
			defer acks.Done()
			if strings.Contains(string(args), `"rate_limited"`) {
				limited.Add(1)
			}
		}, "doc:presence", obj("doc", "d1", "rev", 4, "sel", []any{}))
		if err != nil {
			t.Fatal(err)
		}
	}
	acks.Wait()
	if n := limited.Load(); n < 20 || n > 300-58 {
		t.Fatalf("%d of 300 presence updates rate limited", n)
	}
}

// TestLastMemberLeavesAndRejoins: the subscription ends with the last member
// and a later join subscribes again without losing records.
func TestLastMemberLeavesAndRejoins(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.client()
	for round := 0; round < 3; round++ {
		j := a.mustOK("doc:join", obj("doc", "d", "client", "a"))
		if j.Rev != uint64(round) {
			t.Fatalf("round %d: join at %d", round, j.Rev)
		}
		a.mustOK("doc:op", obj("doc", "d", "client", "a", "seq", round+1, "rev", round, "op", raw(`["x"]`)))
		a.mustOK("doc:leave", obj("doc", "d"))
		if st := e.svc.Stats(); st.Documents != 0 || st.Members != 0 {
			t.Fatalf("stats after leave: %+v", st)
		}
	}
	// Leaving a document never joined is fine.
	a.mustOK("doc:leave", obj("doc", "other"))
}

// TestDelete: the members of a deleted document are disconnected; a new
// join finds the empty document.
func TestDelete(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, other := e.client(), e.client()
	a.mustOK("doc:join", obj("doc", "gone", "client", "a"))
	other.mustOK("doc:join", obj("doc", "kept", "client", "o"))
	a.mustOK("doc:op", obj("doc", "gone", "client", "a", "seq", 1, "rev", 0, "op", raw(`["bye"]`)))
	if err := e.svc.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the member's connection stayed open")
	}
	if st := e.svc.Stats(); st.Members != 1 || st.Documents != 1 {
		t.Fatalf("stats: %+v", st)
	}
	j := e.client().mustOK("doc:join", obj("doc", "gone", "client", "a", "rev", 1))
	if j.Rev != 0 || j.Text == nil || *j.Text != "" {
		t.Fatalf("join after delete: %s", j.raw)
	}
	other.mustOK("doc:history", obj("doc", "kept")) // other documents' members are untouched
}

// TestSlowReaderIsDropped: a member that stops reading overflows its send
// queue and is disconnected; the sequencer, the author and the other members
// go on (the subscription callback never waits for it).
func TestSlowReaderIsDropped(t *testing.T) {
	e := newEnv(t, envOpts{
		limits:  session.Limits{OpsPerSecond: 1e6, OpsBurst: 1e6},
		sockCfg: sockets.Config{WriteQueueBytes: 1 << 20},
	})
	unblock := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release)
	slow, err := sioclient.Dial(context.Background(), sioclient.Config{
		Addr:             e.addr,
		SocketRecvBuffer: 4096,
		OnEvent: func(name string, args []byte) {
			if name == "doc:op" {
				<-unblock // stop reading at the first record
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.Close)
	if _, err := slow.Call(10*time.Second, "doc:join", obj("doc", "d", "client", "slow")); err != nil {
		t.Fatal(err)
	}
	author, fast := e.client(), e.client()
	author.mustOK("doc:join", obj("doc", "d", "client", "author"))
	fast.mustOK("doc:join", obj("doc", "d", "client", "fast"))
	// Big records, alternately inserted and deleted, fill the kernel's
	// buffers and then the queue quickly.
	chunk := strings.Repeat("x", 256<<10)
	for i := 1; i <= 200 && e.svc.Stats().Members == 3; i++ {
		op := `["` + chunk + `"]`
		if i%2 == 0 {
			op = fmt.Sprintf("[%d]", -len(chunk))
		}
		author.mustOK("doc:op", obj("doc", "d", "client", "author", "seq", i, "rev", i-1, "op", raw(op)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.svc.Stats().Members != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow member was not dropped: %+v", e.svc.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	rev, _ := e.text("d")
	for got := uint64(0); got < rev; {
		got = decode[opEvent](t, fast.next("doc:op")).Rev
	}
	release()
	<-slow.Done()
}
