package collab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
)

// The life cycle of a hub: open the store, start the hub, subscribe to a
// document, submit ops (one of them late, made on an older revision), read
// the history, close the hub, close the store.
func Example() {
	dir, _ := os.MkdirTemp("", "collabd-example")
	defer os.RemoveAll(dir)
	store, err := storage.OpenBolt(filepath.Join(dir, "collabd.db"), storage.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	hub, err := collab.New(collab.Config{Store: store})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	feed := make(chan storage.Record, 16) // a bounded queue: the callback must not block
	subscription, _ := hub.Subscribe(ctx, "notes", func(r storage.Record) { feed <- r })

	submit := func(client string, seq, base uint64, op string) {
		rev, err := hub.Submit(ctx, collab.Submission{Doc: "notes", Client: client, Seq: seq, BaseRev: base, Op: []byte(op)})
		fmt.Println(client, "got revision", rev, err)
	}
	submit("ann", 1, 0, `["Hello world"]`)
	submit("bob", 1, 1, `[5,","]`)  // made on revision 1
	submit("cat", 1, 1, `[11,"!"]`) // also made on revision 1: transformed over bob's op
	submit("bob", 1, 1, `[5,","]`)  // a resend after a reconnect: same revision, no change

	rev, text, _ := hub.Text(ctx, "notes")
	fmt.Printf("revision %d: %q\n", rev, text.String())
	for range 3 {
		r := <-feed
		fmt.Printf("broadcast rev %d from %s: %s\n", r.Rev, r.Client, r.Op)
	}
	subscription.Cancel()
	diffs, _ := hub.Diff(ctx, "notes", 1, 3)
	js, _ := json.Marshal(diffs)
	fmt.Println("diff 1..3:", string(js))
	if err := hub.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// ann got revision 1 <nil>
	// bob got revision 2 <nil>
	// cat got revision 3 <nil>
	// bob got revision 2 <nil>
	// revision 3: "Hello, world!"
	// broadcast rev 1 from ann: ["Hello world"]
	// broadcast rev 2 from bob: [5,","]
	// broadcast rev 3 from cat: [12,"!"]
	// diff 1..3: [[0,"Hello"],[1,","],[0," world"],[1,"!"]]
}
