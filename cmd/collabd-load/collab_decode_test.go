//go:build linux

package main

import (
	"testing"

	"github.com/collabd/collabd/internal/contract"
)

// recordSamples are broadcasts in the server's shapes, plus odd ones.
var recordSamples = []string{
	`[{"doc":"load-1-0","rev":12,"op":[3,"ab",-1],"client":"L1-0-1","seq":4,"user":"load L1-0-1","time":"2026-11-26T01:00:00.123456789Z"}]`,
	`[{"doc":"d","rev":1,"op":["é😀\n"],"client":"c","seq":1,"user":"x","time":"2026-11-26T01:00:00Z"},"offset-17"]`,
	`[{"doc":"d","rev":2,"op":[-2],"client":"c","seq":2,"user":"a \"quoted\" name","time":"t"}]`,
	`[{"doc":"d","rev":3,"op":["\u00e9"],"client":"c\u0041","seq":3}]`,
	`[{"doc":"d","Rev":3,"op":[],"client":"c","seq":3}]`,
	`[{"doc":"d","rev":3,"op":[1],"client":"c","seq":3,"extra":{"a":[1,2,{"b":null}],"c":true}}]`,
	`[ {"doc":"d","rev":3,"op":[1],"client":"c","seq":3} ]`,
	`[{"doc":"d","rev":-1,"op":[1],"client":"c","seq":3}]`,
	`[{"doc":"d","rev":1.5,"op":[1],"client":"c","seq":3}]`,
	`[{"doc":"d","rev":3,"op":[0],"client":"c","seq":3}]`,
	`[{"doc":"d","rev":3,"op":[1],"client":"c","seq":3},]`,
	`[{"doc":"d","rev":3,"op":[1],"client":"c","seq":3}] `,
	`[{}]`,
	`[]`,
	`{}`,
}

func TestDecodeRecord(t *testing.T) {
	m, err := decodeRecord([]byte(recordSamples[0]))
	if err != nil {
		t.Fatal(err)
	}
	if m.Doc != "load-1-0" || m.Rev != 12 || m.Client != "L1-0-1" || m.Seq != 4 || m.Op.String() != `[3,"ab",-1]` {
		t.Fatalf("decoded %+v", m)
	}
	if _, err := fastRecord([]byte(recordSamples[0])); err != nil {
		t.Fatalf("the server's shape took the slow path: %v", err)
	}
	m, err = decodeRecord([]byte(recordSamples[3])) // escapes: slow path, same answer
	if err != nil || m.Client != "cA" || m.Op.String() != `["é"]` {
		t.Fatalf("escaped record: %+v, %v", m, err)
	}
	for _, s := range recordSamples {
		t.Run(s, func(t *testing.T) { checkDecodersAgree(t, []byte(s)) })
	}
}

func TestDecodeOpAck(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		rev    uint64
		code   contract.Code
		fast   bool
		hasErr bool
	}{
		{`[{"ok":true,"rev":7}]`, true, 7, "", true, false},
		{`[{"ok":true,"rev":7},"x"]`, true, 7, "", true, false},
		{`[{"ok":false,"error":{"code":"rate_limited","message":"m"}}]`, false, 0, "rate_limited", false, false},
		{`[{"ok":true,"rev":"7"}]`, false, 0, "", false, true},
		{`[{"ok":1}]`, false, 0, "", false, true},
		{`[]`, false, 0, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := decodeOpAck([]byte(tt.in))
			if (err != nil) != tt.hasErr {
				t.Fatalf("err = %v, want error %v", err, tt.hasErr)
			}
			if a.OK != tt.ok || a.Rev != tt.rev || (tt.code != "" && (a.Error == nil || a.Error.Code != tt.code)) {
				t.Fatalf("decoded %+v", a)
			}
			if _, ferr := fastOpAck([]byte(tt.in)); (ferr == nil) != tt.fast {
				t.Fatalf("fast path: %v, want taken %v", ferr, tt.fast)
			}
		})
	}
}

// checkDecodersAgree: whenever the fast decoders accept an input,
// encoding/json accepts it too and decodes the same values.
func checkDecodersAgree(tb testing.TB, b []byte) {
	if m, err := fastRecord(b); err == nil {
		var want recordMsg
		if err := firstArg(b, &want); err != nil {
			tb.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
		}
		if m.Doc != want.Doc || m.Client != want.Client || m.Rev != want.Rev || m.Seq != want.Seq || !m.Op.Equal(want.Op) {
			tb.Fatalf("%q: fast %+v, encoding/json %+v", b, m, want)
		}
	}
	if a, err := fastOpAck(b); err == nil {
		var want ackMsg
		if err := firstArg(b, &want); err != nil {
			tb.Fatalf("fast ack path accepted %q, encoding/json: %v", b, err)
		}
		if a.OK != want.OK || a.Rev != want.Rev || want.Error != nil {
			tb.Fatalf("%q: fast %+v, encoding/json %+v", b, a, want)
		}
	}
}

func FuzzDecoders(f *testing.F) {
	for _, s := range recordSamples {
		f.Add([]byte(s))
	}
	f.Add([]byte(`[{"ok":true,"rev":7}]`))
	f.Add([]byte(`[{"ok":true,"rev":7,"Ok":false}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodersAgree(t, b)
		_, _ = decodeRecord(b)
		_, _ = decodeOpAck(b)
	})
}
