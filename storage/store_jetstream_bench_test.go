package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkJetStreamCommit: one record per Commit to one document, on an
// embedded R1 server, with JetStream's default sync (every 2 minutes) and
// with SyncAlways (an fsync per append). Sequential: this is the latency
// of an append, the bound of one hot document's throughput.
func BenchmarkJetStreamCommit(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprint("syncAlways=", sync), func(b *testing.B) {
			srv := runNATS(b, natsOpts(b.TempDir(), sync))
			s := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				w := Write{Doc: "bench", Records: []Record{rec(uint64(i+1), "c", uint64(i+1), i, "x")}}
				if err := s.Commit(ctx, []Write{w}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJetStreamCommitDocs: one Commit of one record to each of 100
// documents (what the committer sends under load), appended concurrently.
func BenchmarkJetStreamCommitDocs(b *testing.B) {
	srv := runNATS(b, natsOpts(b.TempDir(), false))
	s := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
	ctx := context.Background()
	writes := make([]Write, 100)
	b.ResetTimer()
	for i := range b.N {
		for d := range writes {
			writes[d] = Write{Doc: fmt.Sprint("d", d), Records: []Record{rec(uint64(i+1), "c", uint64(i+1), i, "x")}}
		}
		if err := s.Commit(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(writes)), "µs/record")
}

// BenchmarkJetStreamTextAt: the text at a random revision of a 2,000
// revision document with a snapshot every 100 (at most 99 records
// replayed, one message each).
func BenchmarkJetStreamTextAt(b *testing.B) {
	srv := runNATS(b, natsOpts(b.TempDir(), false))
	s := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(b, 11, 2000)
	commitHistory(b, s, "long", h, 1, 100)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		rev := 1 + r.Uint64N(2000)
		if _, err := s.TextAt(ctx, "long", rev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJetStreamRecords: Records of n records (one message each) from
// a random revision of a 2,000-revision document with a snapshot every
// 100 (the read starts at the snapshot at or below the revision).
func BenchmarkJetStreamRecords(b *testing.B) {
	srv := runNATS(b, natsOpts(b.TempDir(), false))
	s := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(b, 12, 2000)
	commitHistory(b, s, "long", h, 1, 100)
	ctx := context.Background()
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			for range b.N {
				after := r.Uint64N(uint64(2000 - n + 1))
				recs, err := s.Records(ctx, "long", after, n)
				if err != nil || len(recs) != n {
					b.Fatal(len(recs), err)
				}
			}
		})
	}
}

// BenchmarkJetStreamFollow: records appended by one store instance and
// delivered to another's follow feed (two connections, embedded R1
// server). latency: each op appends one record and waits until the feed
// has it. throughput: b.N single-record appends (16 documents, one
// Commit each, 16 at a time), then a wait until the feed has them all;
// ns/op is per record.
func BenchmarkJetStreamFollow(b *testing.B) {
	srv := runNATS(b, natsOpts(b.TempDir(), false))
	follower := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
	writer := openJSTest(b, srv.ClientURL(), JetStreamConfig{})
	ctx := context.Background()
	var seen atomic.Int64
	arrived := make(chan struct{}, 1)
	stop, err := follower.Follow(ctx, func(doc string, recs []Record) {
		seen.Add(int64(len(recs)))
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	waitSeen := func(n int64) {
		for seen.Load() < n {
			<-arrived
		}
	}
	heads := map[string]uint64{}
	commit := func(doc string) {
		heads[doc]++
		w := Write{Doc: doc, Records: []Record{rec(heads[doc], "c", heads[doc], int(heads[doc]-1), "x")}}
		if err := writer.Commit(ctx, []Write{w}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("latency", func(b *testing.B) {
		for range b.N {
			next := seen.Load() + 1
			commit("lat")
			waitSeen(next)
		}
	})
	b.Run("throughput", func(b *testing.B) {
		start := seen.Load()
		for i := 0; i < b.N; i += 16 {
			writes := make([]Write, 0, 16)
			for d := range min(16, b.N-i) {
				doc := fmt.Sprint("tp", d)
				heads[doc]++
				writes = append(writes, Write{Doc: doc, Records: []Record{rec(heads[doc], "c", heads[doc], int(heads[doc]-1), "x")}})
			}
			if err := writer.Commit(ctx, writes); err != nil {
				b.Fatal(err)
			}
		}
		waitSeen(start + int64(b.N))
	})
}

// BenchmarkJetStreamClusterTextAt: BenchmarkJetStreamTextAt on a
// 3-server cluster with an R3 stream (creating a range consumer goes
// through the meta leader there).
func BenchmarkJetStreamClusterTextAt(b *testing.B) {
	_, url := runNATSCluster(b)
	ctx0, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenJetStream(ctx0, connectJS(b, url), JetStreamConfig{Replicas: 3})
	if err != nil {
		b.Fatal(err)
	}
	h := makeHistory(b, 11, 2000)
	commitHistory(b, s, "long", h, 1, 100)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		rev := 1 + r.Uint64N(2000)
		if _, err := s.TextAt(ctx, "long", rev); err != nil {
			b.Fatal(err)
		}
	}
}
