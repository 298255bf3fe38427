package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/collabd/collabd/sockets/engineio"
)

// app is the set of servers behind one HTTP mux.
type app struct {
	mux  *http.ServeMux
	echo *engineio.Server // --official only
}

func newApp(official bool) (*app, error) {
	a := &app{mux: http.NewServeMux()}
	if official {
		a.echo = newEngineEcho(engineio.Config{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			MaxPayload:   1_000_000,
		})
		a.mux.Handle("/engine.io/", a.echo)
	}
	return a, nil
}

func (a *app) shutdown(ctx context.Context) error {
	var err error
	if a.echo != nil {
		err = errors.Join(err, a.echo.Shutdown(ctx))
	}
	return err
}
