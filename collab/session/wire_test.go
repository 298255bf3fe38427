package session_test

import (
	"encoding/json"
	"testing"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/contract"
)

// TestHistoryRequestLimit: doc:history pages by the wire contract's
// default and lowers a larger limit to its bound (the HTTP API refuses it).
func TestHistoryRequestLimit(t *testing.T) {
	tests := []struct {
		payload string
		want    int
	}{
		{`{"doc":"d"}`, contract.DefaultHistoryLimit},
		{`{"doc":"d","limit":null}`, contract.DefaultHistoryLimit},
		{`{"doc":"d","limit":0}`, contract.DefaultHistoryLimit},
		{`{"doc":"d","limit":1}`, 1},
		{`{"doc":"d","limit":500}`, contract.MaxHistoryLimit},
		{`{"doc":"d","limit":501}`, contract.MaxHistoryLimit},
		{`{"doc":"d","limit":9007199254740991}`, contract.MaxHistoryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			var r session.HistoryRequest
			if err := json.Unmarshal([]byte(tt.payload), &r); err != nil {
				t.Fatal(err)
			}
			if r.Limit != tt.want {
				t.Fatalf("limit %d, want %d", r.Limit, tt.want)
			}
		})
	}
}
