package sockets

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// pollClient speaks Engine.IO long-polling.
type pollClient struct {
	t   testing.TB
	url string
}

func (p *pollClient) do(method, body string) string {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("%s: status %d %s", method, resp.StatusCode, b)
	}
	return string(b)
}

func TestPollingTransport(t *testing.T) {
	_, url := officialServer(t)
	p := &pollClient{t: t, url: url + "/socket.io/?EIO=4&transport=polling"}
	open := p.do("GET", "")
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil || hs.SID == "" {
		t.Fatalf("handshake %q: %v", open, err)
	}
	p.url += "&sid=" + hs.SID
	p.do("POST", "40")
	got := p.do("GET", "")
	parts := strings.Split(got, "\x1e")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], `40{"sid":`) || parts[1] != `42["auth",{}]` {
		t.Fatalf("connect over polling: %q", got)
	}
	// Two packets in one POST, one of them binary (base64).
	p.do("POST", "42[\"message\",\"a\"]\x1e451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID")
	got = p.do("GET", "")
	want := "42[\"message-back\",\"a\"]\x1e451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	p.do("POST", "41")
	p.do("POST", "1")
}
