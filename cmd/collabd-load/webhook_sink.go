package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// webhookSink is an HTTP endpoint for the started collabd's webhooks
// (--webhook-sink): "ok" answers every delivery 204, "hang" reads it and
// never answers, to show that a stuck endpoint does not slow the editors.
type webhookSink struct {
	mode     string
	srv      *http.Server
	hang     chan struct{} // closed by close: hanging requests return
	once     sync.Once
	received atomic.Int64 // requests read
}

// webhookSecret signs the sink's deliveries; the sink does not check them.
const webhookSecret = "collabd-load-webhook-secret"

// startWebhookSink starts the sink of mode ("" or "none": no sink) and
// returns the collabd flags that point webhooks at it.
func startWebhookSink(mode string) (*webhookSink, []string, error) {
	switch mode {
	case "", "none":
		return nil, nil, nil
	case "ok", "hang":
	default:
		return nil, nil, errors.New("--webhook-sink must be none, ok or hang")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s := &webhookSink{mode: mode, hang: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.received.Add(1)
		if s.mode == "hang" {
			select {
			case <-s.hang:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	flags := []string{"--webhook-url", "http://" + ln.Addr().String() + "/hook", "--webhook-secret", webhookSecret,
		"--webhook-debounce", "100ms"}
	return s, flags, nil
}

// close stops the sink and reports what it received.
func (s *webhookSink) close(w io.Writer) {
	if s == nil {
		return
	}
	s.once.Do(func() {
		close(s.hang)
		s.srv.Close()
		fmt.Fprintf(w, "  webhook sink (%s, debounce 100ms): %d deliveries received\n", s.mode, s.received.Load())
	})
}
