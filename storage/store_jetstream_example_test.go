package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/collabd/collabd/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Two nodes append to one document; the one that loses the race catches
// up from the stream and retries at the next revision.
func ExampleOpenJetStream() {
	dir, _ := os.MkdirTemp("", "collabd-example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(10 * time.Second)
	defer srv.WaitForShutdown()
	defer srv.Shutdown()

	ctx := context.Background()
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	open := func() *storage.JetStream {
		nc, _ := nats.Connect(srv.ClientURL())
		conns = append(conns, nc)
		js, _ := jetstream.New(nc)
		s, err := storage.OpenJetStream(ctx, js, storage.JetStreamConfig{Replicas: 1})
		if err != nil {
			panic(err)
		}
		return s
	}
	a, b := open(), open()
	op := func(rev uint64, client, text string) storage.Record {
		return storage.Record{Rev: rev, Op: []byte(fmt.Sprintf("[%d,%q]", rev-1, text)), Client: client, Seq: 1, Time: time.Now(), Ins: 1}
	}
	seed := storage.Record{Rev: 1, Op: []byte(`["."]`), Client: "seed", Seq: 1, Time: time.Now(), Ins: 1}
	if err := a.Commit(ctx, []storage.Write{{Doc: "notes.md", Records: []storage.Record{seed}}}); err != nil {
		panic(err)
	}

	// Both nodes know head 1 and append revision 2.
	b.Load(ctx, "notes.md", 0)
	fmt.Println(a.Commit(ctx, []storage.Write{{Doc: "notes.md", Records: []storage.Record{op(2, "alice", "a")}}}))
	err := b.Commit(ctx, []storage.Write{{Doc: "notes.md", Records: []storage.Record{op(2, "bob", "b")}}})
	var stale *storage.StaleError
	if errors.As(err, &stale) {
		fmt.Println("bob lost; head is", stale.Head)
		missed, _ := b.Records(ctx, "notes.md", stale.Rev-1, 100)
		fmt.Println("caught up with", missed[0].Client)
		// A sequencer would apply its exactly-once rule and transform here.
		fmt.Println(b.Commit(ctx, []storage.Write{{Doc: "notes.md", Records: []storage.Record{op(stale.Head+1, "bob", "b")}}}))
	}
	text, _ := a.TextAt(ctx, "notes.md", 3)
	fmt.Println(text)
	// Output:
	// <nil>
	// bob lost; head is 2
	// caught up with alice
	// <nil>
	// .ab
}
