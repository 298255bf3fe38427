package storage

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestJetStreamRangeReads: reads of many messages go through a range
// consumer that is deleted afterwards; when no consumer can be created
// (the stream's consumer limit is reached) the same reads fall back to
// one get per message and return the same records.
func TestJetStreamRangeReads(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	js := connectJS(t, srv.ClientURL())
	// The stream as OpenJetStream would create it, with room for one
	// consumer.
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: DefaultJetStreamStream, Subjects: []string{DefaultJetStreamSubject + ".>"},
		Storage: jetstream.FileStorage, DenyDelete: true, MaxConsumers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 61, 400)
	commitHistory(t, s, "many", h, 1, 150)

	read := func(what string, consumers bool) {
		t.Helper()
		before, ranges := s.gets.Load(), s.ranges.Load()
		recs, err := s.Records(ctx, "many", 20, 300)
		if err != nil || len(recs) != 300 {
			t.Fatalf("%s: records: %d %v", what, len(recs), err)
		}
		for i, r := range recs {
			if !sameRecord(r, h.recs[20+i]) {
				t.Fatalf("%s: record %d differs", what, r.Rev)
			}
		}
		// From revision 1 (no snapshot below 21) to 320, one message each.
		if n := s.gets.Load() - before; n < 320 || n > 322 {
			t.Fatalf("%s: %d messages read for 320", what, n)
		}
		for _, rev := range []uint64{0, 1, 149, 150, 151, 299, 400} {
			if got, err := s.TextAt(ctx, "many", rev); err != nil || got != h.texts[rev] {
				t.Fatalf("%s: text at %d: %v", what, rev, err)
			}
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("%s: check: %v", what, err)
		}
		if used := s.ranges.Load() > ranges; used != consumers {
			t.Fatalf("%s: range consumers used: %v", what, used)
		}
	}
	read("with consumers", true)
	info, err := stream.Info(ctx)
	if err != nil || info.State.Consumers != 0 {
		t.Fatalf("%v consumers left after the reads (%v)", info.State.Consumers, err)
	}

	if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "blocker", AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	read("without consumers", false)
}
