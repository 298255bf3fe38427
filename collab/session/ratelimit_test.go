package session

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(10, 3) // 10 per second, burst 3
		for i := range 3 {
			if !b.allow() {
				t.Fatalf("burst token %d refused", i)
			}
		}
		if b.allow() {
			t.Fatal("a fourth token right away")
		}
		time.Sleep(99 * time.Millisecond)
		if b.allow() {
			t.Fatal("a token before 100 ms")
		}
		time.Sleep(2 * time.Millisecond)
		if !b.allow() {
			t.Fatal("no token after 100 ms")
		}
		time.Sleep(time.Hour) // refills to the burst, no more
		for i := range 3 {
			if !b.allow() {
				t.Fatalf("refilled token %d refused", i)
			}
		}
		if b.allow() {
			t.Fatal("more than the burst after a long pause")
		}
	})
}

func TestEscapesWellFormed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`"abc"`, true},
		{`"\ud83d\ude00"`, true},
		{`"\\ud800"`, true}, // an escaped backslash, then text
		{`"\ud800"`, false},
		{`"\udc00"`, false},
		{`"\ud800x"`, false},
		{`"\ud800\n"`, false},
		{`"\ud800\ud800"`, false},
		{`"\u00e9\"\n"`, true},
		{`"\u12"`, false},
	} {
		if got := escapesWellFormed([]byte(tc.in)); got != tc.want {
			t.Errorf("escapesWellFormed(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
