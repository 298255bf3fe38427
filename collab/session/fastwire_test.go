package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// decodeOpGeneral is the general doc:op path: encoding/json only.
func decodeOpGeneral(b []byte, r *OpRequest) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	return r.fromFields(&f)
}

var opPayloadSeeds = []string{
	// As the frontend and the load program send them.
	`{"doc":"notes","client":"c-5f2a9e","seq":3,"rev":2,"op":[5,"x",-2]}`,
	`{"doc":"load-0042","client":"load-42-3","seq":1187,"rev":4410,"op":[1203,"q"]}`,
	`{"doc":"notes","client":"ann","seq":12,"rev":40,"op":["h\u00e9llo \ud83d\ude00",-1,7]}`,
	` { "doc" : "notes" , "client":"ann", "seq": 1, "rev": 0, "op": [ 3 , "a" ] } `,
	// Shapes the scanner leaves to encoding/json, and bad payloads.
	`{"DOC":"notes","client":"ann","seq":1,"rev":0,"op":["a"]}`,
	`{"doc":"notes","doc":"other","client":"ann","seq":1,"rev":0,"op":["a"]}`,
	`{"d\u006fc":"notes","client":"ann","seq":1,"rev":0,"op":["a"]}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":["a"],"user":{"name":"x"},"extra":[1,{"a":[true,false,null]}]}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":["a"],"ſeq":2}`,
	`{"doc":"notes","client":"\ud800","seq":1,"rev":0,"op":["a"]}`,
	`{"doc":"notes","client":"ann","seq":1.5,"rev":-1,"op":"x"}`,
	`{"doc":"notes","client":"ann","seq":01,"rev":0,"op":["a"]}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":["a"],"x":1e5,"y":-0.5E-3}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":["a\x01"]}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":["\xff"]}`,
	`{"doc":null,"client":null,"seq":null,"rev":null,"op":null}`,
	`{"doc":"notes",}`, `{"doc":"notes"`, `{"doc":"notes"}x`, `{}`, `[1]`, `null`, `"x"`, ``,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":[1,"a"],"z":"\q"}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":[1,"a"],"z":"\u12g4"}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":[1,"a"],"z":tru}`,
	`{"doc":"notes","client":"ann","seq":1,"rev":0,"op":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

// FuzzOpFast checks the hand-written doc:op scanner against encoding/json:
// whatever it accepts is valid JSON that encoding/json decodes into the same
// fields, and decodeOp always ends with the result (request and error) of
// the general path.
func FuzzOpFast(f *testing.F) {
	for _, s := range opPayloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast rawFields
		if scanOpFields(data, &fast) {
			var slow rawFields
			if err := json.Unmarshal(data, &slow); err != nil {
				t.Fatalf("scanner accepted what encoding/json rejects: %v", err)
			}
			for _, p := range [][2]json.RawMessage{{fast.Doc, slow.Doc}, {fast.Client, slow.Client}, {fast.Seq, slow.Seq}, {fast.Rev, slow.Rev}, {fast.Op, slow.Op}} {
				if !bytes.Equal(p[0], p[1]) || (p[0] == nil) != (p[1] == nil) {
					t.Fatalf("field %q, encoding/json %q", p[0], p[1])
				}
			}
		}
		var got, want OpRequest
		gerr, werr := decodeOp(data, &got), decodeOpGeneral(data, &want)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("error %v, general path %v", gerr, werr)
		}
		if gerr == nil && (got.Doc != want.Doc || got.Client != want.Client || got.Seq != want.Seq || got.Rev != want.Rev || !bytes.Equal(got.Op, want.Op)) {
			t.Fatalf("decoded %+v, general path %+v", got, want)
		}
	})
}

// TestScanOpFieldsTakesTheUsualPayload makes sure the scanner is what
// decodes the payloads clients send (not the fallback).
func TestScanOpFieldsTakesTheUsualPayload(t *testing.T) {
	for _, s := range opPayloadSeeds[:4] {
		var f rawFields
		if !scanOpFields([]byte(s), &f) {
			t.Fatalf("scanner refused %s", s)
		}
	}
	for _, s := range opPayloadSeeds[4:9] {
		var f rawFields
		if scanOpFields([]byte(s), &f) {
			t.Fatalf("scanner accepted %s, which encoding/json must decide", s)
		}
	}
}

func TestEncodeOpEventMatchesEncodingJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, rec := range []storage.Record{
		{Rev: 1, Op: json.RawMessage(`["a"]`), Client: "c", Seq: 1, User: "Ann", Time: time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC)},
		{Rev: 1 << 53, Op: json.RawMessage(`[5,"x\"\\\n",-2]`), Client: "c-\"quoted\"\\ \x01\t<&>", Seq: 9, User: "Zoë 😀 \u2028\u2029", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, paris)},
		{Rev: 7, Op: json.RawMessage(`[1]`), Client: "bad \xff utf8", Seq: 2, User: "", Time: time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC)},
		{Rev: 8, Op: nil, Client: "x", Seq: 3, Time: time.Time{}},
	} {
		got, err := encodeOpEvent("notes.2026", &rec)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeEvent("doc:op", opEvent{Doc: "notes.2026", Rev: rec.Rev, Op: rec.Op, Client: rec.Client, Seq: rec.Seq, User: rec.User, Time: rec.Time.UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Packet.Data, want.Packet.Data) {
			t.Fatalf("encoded\n%s\nencoding/json\n%s", got.Packet.Data, want.Packet.Data)
		}
	}
}

// TestEncodeOpEventAllocs: the broadcast of an op is encoded in one buffer
// that is never grown nor copied (sockets.EventWriter), so three
// allocations: that buffer, the engine's message, and the Encoded.
func TestEncodeOpEventAllocs(t *testing.T) {
	rec := storage.Record{Rev: 1<<64 - 1, Op: json.RawMessage(`[1203,"q"]`), Client: "load-42-3", Seq: 1<<64 - 1, User: "anonymous",
		Time: time.Date(2026, 11, 26, 1, 2, 3, 456789123, time.FixedZone("x", -12345))}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := encodeOpEvent("load-0042", &rec); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Fatalf("%v allocations per broadcast, want 3", allocs)
	}
}

func TestAppendRevAck(t *testing.T) {
	for _, rev := range []uint64{0, 1, 42, 1<<53 - 1} {
		want, _ := json.Marshal(revAck{OK: true, Rev: rev})
		if got := appendRevAck(nil, rev); !bytes.Equal(got, want) {
			t.Fatalf("%s, want %s", got, want)
		}
	}
}

func TestOkAckJSON(t *testing.T) {
	want, _ := json.Marshal(okAck{OK: true})
	if !bytes.Equal(okAckJSON, want) {
		t.Fatalf("%s, want %s", okAckJSON, want)
	}
}

// BenchmarkDecodeOp compares the doc:op decoding of the hot path with the
// general one (encoding/json, as sockets.Handle would run it).
func BenchmarkDecodeOp(b *testing.B) {
	payload := []byte(opPayloadSeeds[1])
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r OpRequest
			if err := decodeOp(payload, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r OpRequest
			if err := json.Unmarshal(payload, (*opRequestGeneral)(&r)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// opRequestGeneral decodes like OpRequest did before the scanner.
type opRequestGeneral OpRequest

func (r *opRequestGeneral) UnmarshalJSON(b []byte) error {
	return decodeOpGeneral(b, (*OpRequest)(r))
}

// BenchmarkEncodeOpEvent compares the doc:op broadcast encoding with
// encoding/json's.
func BenchmarkEncodeOpEvent(b *testing.B) {
	rec := storage.Record{Rev: 4411, Op: json.RawMessage(`[1203,"q"]`), Client: "load-42-3", Seq: 1187, User: "anonymous", Time: time.Now().UTC()}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeOpEvent("load-0042", &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeEvent("doc:op", opEvent{Doc: "load-0042", Rev: rec.Rev, Op: rec.Op, Client: rec.Client, Seq: rec.Seq, User: rec.User, Time: rec.Time}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
