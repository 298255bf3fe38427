package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// A collabd server in a few lines: the store, the hub, the Socket.IO server
// and the session glue between them, then the shutdown in order.
func ExampleAttach() {
	store, err := storage.OpenBolt("collabd.db", storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := collab.New(collab.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	sio, err := sockets.New(sockets.Config{})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := session.Attach(sio, session.Config{
		Hub:    hub,
		Limits: session.Limits{OpsPerSecond: 20},
		// With tokens: decide the identity once per connection.
		Authenticate: func(auth json.RawMessage) (session.Identity, error) {
			var a struct{ Token string }
			if auth == nil || json.Unmarshal(auth, &a) != nil || a.Token != "let-me-in" {
				return session.Identity{}, errors.New("missing or bad token")
			}
			return session.Identity{User: "ann"}, nil // Access nil: edit everything
		},
		Logger: zerolog.New(os.Stderr),
	})
	if err != nil {
		log.Fatal(err)
	}
	httpSrv := &http.Server{Addr: "127.0.0.1:8080", Handler: sio}
	go httpSrv.ListenAndServe()

	// ... on SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(ctx) // stop accepting (hijacked WebSockets are not touched)
	_ = sio.Shutdown(ctx)     // close every socket: "server shutting down"
	_ = hub.Close(ctx)        // let the ops in flight commit, final snapshots
	svc.Wait()                // the goroutines that answered them
	_ = store.Close()
}
