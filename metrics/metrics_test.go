package metrics

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func expose(tb testing.TB, r *Registry) string {
	tb.Helper()
	var sb strings.Builder
	n, err := r.WriteTo(&sb)
	if err != nil {
		tb.Fatal(err)
	}
	if n != int64(sb.Len()) {
		tb.Fatalf("WriteTo returned %d, wrote %d bytes", n, sb.Len())
	}
	return sb.String()
}

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("collabd_ops_committed_total", "Ops committed.")
	c.Add(41)
	c.Inc()
	r.GaugeFunc("collabd_sockets", "Connected sockets.\nSecond line with \\.", func() float64 { return 3 })
	r.CounterFunc("collabd_commits_total", "Commits.", func() float64 { return 7 })
	h := r.Histogram("collabd_commit_seconds", "Commit time.", []float64{0.001, 0.01, 0.1})
	for _, v := range []float64{0.0005, 0.001, 0.005, 0.05, 2} {
		h.Observe(v)
	}
	want := `# HELP collabd_ops_committed_total Ops committed.
# TYPE collabd_ops_committed_total counter
collabd_ops_committed_total 42
# HELP collabd_sockets Connected sockets.\nSecond line with \\.
# TYPE collabd_sockets gauge
collabd_sockets 3
# HELP collabd_commits_total Commits.
# TYPE collabd_commits_total counter
collabd_commits_total 7
# HELP collabd_commit_seconds Commit time.
# TYPE collabd_commit_seconds histogram
collabd_commit_seconds_bucket{le="0.001"} 2
collabd_commit_seconds_bucket{le="0.01"} 3
collabd_commit_seconds_bucket{le="0.1"} 4
collabd_commit_seconds_bucket{le="+Inf"} 5
collabd_commit_seconds_sum 2.0565
collabd_commit_seconds_count 5
`
	if got := expose(t, r); got != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegisterPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(r *Registry)
	}{
		{"invalid name", func(r *Registry) { r.Counter("bad-name", "") }},
		{"duplicate", func(r *Registry) { r.Counter("x", ""); r.GaugeFunc("x", "", nil) }},
		{"buckets not ascending", func(r *Registry) { r.Histogram("h", "", []float64{1, 1}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.fn(NewRegistry())
		})
	}
}

func TestFormatFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1.5, "1.5"}, {1e21, "1e+21"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
	} {
		if got := formatFloat(tc.v); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestConcurrentObserve checks that observations from many goroutines are all
// counted while scrapes run (and, under -race, that nothing races).
func TestConcurrentObserve(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("h_seconds", "", ExponentialBuckets(0.001, 2, 10))
	c := r.Counter("c_total", "")
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.Observe(float64(w*each+i) / 1e5)
				c.Inc()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			_, _ = r.WriteTo(io.Discard)
		}
	}()
	wg.Wait()
	<-done
	samples := parse(t, expose(t, r))
	if samples[`h_seconds_count`] != workers*each || samples[`h_seconds_bucket{le="+Inf"}`] != workers*each {
		t.Fatalf("count = %v, +Inf = %v", samples["h_seconds_count"], samples[`h_seconds_bucket{le="+Inf"}`])
	}
	wantSum := float64(workers*each*(workers*each-1)/2) / 1e5
	if math.Abs(samples["h_seconds_sum"]-wantSum) > 1e-6 {
		t.Fatalf("sum = %v, want %v", samples["h_seconds_sum"], wantSum)
	}
	if samples["c_total"] != workers*each {
		t.Fatalf("counter = %v", samples["c_total"])
	}
	// Buckets are cumulative.
	prev := -1.0
	for _, ub := range ExponentialBuckets(0.001, 2, 10) {
		v := samples[`h_seconds_bucket{le="`+formatFloat(ub)+`"}`]
		if v < prev {
			t.Fatalf("bucket %v = %v below previous %v", ub, v, prev)
		}
		prev = v
	}
}

func TestServeHTTPAndRuntime(t *testing.T) {
	r := NewRegistry()
	r.RegisterGoRuntime()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	s := parse(t, rec.Body.String())
	if s["go_goroutines"] < 1 || s["go_memstats_heap_alloc_bytes"] <= 0 || s["go_memstats_sys_bytes"] < s["go_memstats_heap_alloc_bytes"] {
		t.Fatalf("runtime samples %v", s)
	}
}

// parse reads an exposition into series -> value, checking every line's form.
func parse(tb testing.TB, text string) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			tb.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().Histogram("h", "", ExponentialBuckets(0.0005, 2, 14))
	b.RunParallel(func(pb *testing.PB) {
		v := 0.001
		for pb.Next() {
			h.Observe(v)
		}
	})
}
