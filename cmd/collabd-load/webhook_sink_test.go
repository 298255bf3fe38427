package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWebhookSink(t *testing.T) {
	if s, flags, err := startWebhookSink("none"); s != nil || flags != nil || err != nil {
		t.Fatalf("none: %v %v %v", s, flags, err)
	}
	if _, _, err := startWebhookSink("bogus"); err == nil {
		t.Fatal("bogus mode accepted")
	}
	ok, flags, err := startWebhookSink("ok")
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) < 4 || flags[0] != "--webhook-url" {
		t.Fatalf("flags %v", flags)
	}
	res, err := http.Post(flags[1], "application/json", strings.NewReader("{}"))
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("ok sink: %v %v", res, err)
	}
	res.Body.Close()
	var out strings.Builder
	ok.close(&out)
	if !strings.Contains(out.String(), "1 deliveries") {
		t.Fatalf("report %q", out.String())
	}

	hang, flags, err := startWebhookSink("hang")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 300 * time.Millisecond}
	if res, err := c.Post(flags[1], "application/json", strings.NewReader("{}")); err == nil {
		res.Body.Close()
		t.Fatalf("hanging sink answered %d", res.StatusCode)
	}
	hang.close(io.Discard)
}
