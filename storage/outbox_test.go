package storage

import (
	"context"
	"path/filepath"
	"testing"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "collabd.db")
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Outbox(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty outbox: %v %v", got, err)
	}
	var put []OutboxEntry
	for _, k := range []string{"b", "a", "c"} {
		put = append(put, OutboxEntry{k, []byte("v-" + k)})
	}
	if err := s.WriteOutbox(ctx, put, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteOutbox(ctx, []OutboxEntry{{"a", []byte("v-a")}}, []string{"c", "zz"}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteOutbox(ctx, []OutboxEntry{{"", nil}}, nil); err == nil {
		t.Fatal("empty key accepted")
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check with an outbox: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Durable across a reopen, in key order.
	s, err = OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Outbox(ctx)
	if err != nil || len(got) != 2 || got[0].Key != "a" || string(got[0].Value) != "v-a" || got[1].Key != "b" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteOutbox(ctx, []OutboxEntry{{"x", nil}}, nil); err == nil {
		t.Fatal("put after close accepted")
	}
}
