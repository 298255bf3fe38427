package sockets

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentEmitters broadcasts from several goroutines while sockets join and leave rooms
// and fetch each other: every client gets every namespace-wide broadcast once, each emitter's
// broadcasts in order, and the race detector sees no unguarded state.
func TestConcurrentEmitters(t *testing.T) {
	const clients, emitters, perEmitter = 6, 4, 100
	srv, cs, ss := roomServer(t, Config{}, clients)
	var wg sync.WaitGroup
	for e := range emitters {
		wg.Go(func() {
			for i := range perEmitter {
				if err := srv.Emit("n", e, i); err != nil {
					t.Error(err)
					return
				}
				_ = srv.To("busy").Emit("room", e, i)
			}
		})
	}
	for i, s := range ss {
		wg.Go(func() {
			for j := range perEmitter {
				room := fmt.Sprintf("r%d", j%5)
				s.Join(room, "busy")
				_ = s.Broadcast().Volatile().Emit("vol", i)
				_ = s.Rooms()
				s.Leave(room)
				if j%20 == 0 {
					if _, err := srv.Of("/").In(room).FetchSockets(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	_ = srv.Emit("end")
	for ci, c := range cs {
		next := make([]int, emitters)
		for {
			f := c.next()
			if f.data == `42["end"]` {
				break
			}
			if !strings.HasPrefix(f.data, `42["n",`) {
				continue
			}
			var e, i int
			if _, err := fmt.Sscanf(f.data, `42["n",%d,%d]`, &e, &i); err != nil {
				t.Fatalf("client %d: %q: %v", ci, f.data, err)
			}
			if i != next[e] {
				t.Fatalf("client %d: emitter %d sent %d, want %d", ci, e, i, next[e])
			}
			next[e]++
		}
		for e, n := range next {
			if n != perEmitter {
				t.Fatalf("client %d got %d of emitter %d's %d broadcasts", ci, n, e, perEmitter)
			}
		}
	}
}
