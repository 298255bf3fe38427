package sockets

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzServerInput posts arbitrary Socket.IO packets (and a binary attachment) on a connected
// long-polling session: the server must never panic, and must keep serving other sessions.
func FuzzServerInput(f *testing.F) {
	for _, s := range []string{
		`2["message",1,"2",{"3":[true]}]`, `2456["message-with-ack",1]`, `51-["message",{"_placeholder":true,"num":0}]`,
		`51-7["message-with-ack",{"_placeholder":true,"num":0}]`, `0/custom,{"token":"x"}`, `1`, `1/custom,`,
		`30["late"]`, `4abc`, `2{}`, `2abc["x"]`, `511-["a"]`, `0/random,`, `2/custom,["message"]`,
	} {
		f.Add(s, []byte{1, 2, 3})
	}
	srv, err := New(Config{PingInterval: time.Hour, PingTimeout: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	officialHandlers(srv.Of("/"), true)
	officialHandlers(srv.Of("/custom"), false)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	f.Fuzz(func(t *testing.T, pkt string, bin []byte) {
		m := memHandshake(t, srv)
		m.post("0")
		body := "4" + pkt + "\x1eb" + base64.StdEncoding.EncodeToString(bin)
		_, _ = m.do(http.MethodPost, body)
		_, _ = m.do(http.MethodPost, "1") // close the session (it may be gone already)

		// Another session still works.
		other := memHandshake(t, srv)
		other.post("0")
		if got := other.poll(); len(got) < 2 || !strings.HasPrefix(got[0], `40{"sid":`) {
			t.Fatalf("server broken after %q: %q", pkt, got)
		}
		_, _ = other.do(http.MethodPost, "1")
	})
}
