package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/storage"
)

// BenchmarkOpRoundTrip measures one doc:op through the whole stack (decode,
// sequence, store without fsync, ack, broadcast) with one author in a closed
// loop and `members` other members receiving every record. It reports the
// time per op and the deliveries per second.
func BenchmarkOpRoundTrip(b *testing.B) {
	for _, members := range []int{1, 7, 31} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			e := newEnv(b, envOpts{
				limits: session.Limits{OpsPerSecond: 1e9, OpsBurst: 1 << 30},
				store:  storage.Options{NoSync: true},
			})
			var delivered atomic.Int64
			for i := range members {
				c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: e.addr, OnEvent: func(name string, _ []byte) {
					if name == "doc:op" {
						delivered.Add(1)
					}
				}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Close)
				if _, err := c.Call(10*time.Second, "doc:join", obj("doc", "bench", "client", fmt.Sprint("m", i))); err != nil {
					b.Fatal(err)
				}
			}
			author := e.client()
			author.mustOK("doc:join", obj("doc", "bench", "client", "author"))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				raw, err := author.c.Call(10*time.Second, "doc:op", obj("doc", "bench", "client", "author", "seq", i+1, "rev", i, "op", json.RawMessage(`["x"]`)))
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.HasPrefix(raw, []byte(`[{"ok":true`)) {
					b.Fatalf("ack %s", raw)
				}
			}
			b.StopTimer()
			want := int64(b.N * members)
			for deadline := time.Now().Add(10 * time.Second); delivered.Load() < want; {
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
