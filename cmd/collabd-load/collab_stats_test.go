//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestQuantile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample p50", ms(7), 0.5, 7 * time.Millisecond},
		{"one sample p99", ms(7), 0.99, 7 * time.Millisecond},
		{"two samples p50 is the lower", ms(1, 2), 0.5, 1 * time.Millisecond},
		{"two samples p99 is the upper", ms(1, 2), 0.99, 2 * time.Millisecond},
		{"hundred p50", hundred, 0.50, 50 * time.Millisecond},
		{"hundred p95", hundred, 0.95, 95 * time.Millisecond},
		{"hundred p99", hundred, 0.99, 99 * time.Millisecond},
		{"hundred p100", hundred, 1, 100 * time.Millisecond},
		{"tiny q gives the minimum", hundred, 0.0001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(tt.sorted, tt.q); got != tt.want {
				t.Fatalf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := ms(5, 1, 4, 2, 3)
	s := summarize(in)
	want := latencySummary{N: 5, P50: 3 * time.Millisecond, P95: 5 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond}
	if s != want {
		t.Fatalf("summarize = %+v, want %+v", s, want)
	}
	if in[0] != 5*time.Millisecond {
		t.Fatal("summarize sorted its input in place")
	}
	if got := s.String(); !strings.Contains(got, "p99 5ms") || !strings.Contains(got, "(5 samples)") {
		t.Fatalf("String() = %q", got)
	}
	if (summarize(nil) != latencySummary{}) {
		t.Fatal("summary of no samples is not zero")
	}
}

func TestSamplerKeepsAUniformReservoir(t *testing.T) {
	s := newSampler(1000, 1)
	for i := 0; i < 100_000; i++ {
		s.add(time.Duration(i))
	}
	if len(s.xs) != 1000 || s.seen != 100_000 {
		t.Fatalf("kept %d of %d", len(s.xs), s.seen)
	}
	var sum float64
	late := 0
	for _, d := range s.xs {
		sum += float64(d)
		if d >= 50_000 {
			late++
		}
	}
	// A uniform sample of 0..99999 has mean ~50000 and half its samples in
	// the upper half; a sampler that kept only the first 1000 would not.
	if mean := sum / 1000; math.Abs(mean-50_000) > 5_000 {
		t.Fatalf("mean of the reservoir %.0f, want about 50000", mean)
	}
	if late < 400 || late > 600 {
		t.Fatalf("%d of 1000 samples from the second half, want about 500", late)
	}
}

func TestE2ETracker(t *testing.T) {
	clients := map[string]int{"a": 0, "b": 1, "c": 2}
	tr := newE2ETracker(1, func(c string) (int, bool) { i, ok := clients[c]; return i, ok })
	t0 := time.Unix(1000, 0)
	edit := t0.Add(-2 * time.Millisecond)
	tr.submitted(opKey{0, 1}, edit, t0, 2, true)  // a's seq 1: b and c must apply it
	tr.submitted(opKey{1, 1}, edit, t0, 2, false) // b's seq 1, in the warm-up
	tr.submitted(opKey{2, 7}, edit, t0, 2, true)  // c's seq 7: only b applies it
	tr.submitted(opKey{0, 2}, edit, t0, 0, true)  // nobody else: not tracked

	tr.applied("a", 1, t0.Add(3*time.Millisecond))
	tr.applied("a", 1, t0.Add(5*time.Millisecond)) // the last one decides
	tr.applied("b", 1, t0.Add(time.Millisecond))
	tr.applied("b", 1, t0.Add(time.Millisecond))
	tr.applied("c", 7, t0.Add(time.Millisecond))
	tr.applied("zz", 1, t0) // unknown client
	tr.applied("a", 9, t0)  // unknown seq
	tr.applied("a", 1, t0)  // already complete

	lat, latEdit, incomplete, unknown := tr.results()
	if len(lat) != 1 || lat[0] != 5*time.Millisecond {
		t.Fatalf("latencies %v, want [5ms] (warm-up op not measured)", lat)
	}
	if len(latEdit) != 1 || latEdit[0] != 7*time.Millisecond {
		t.Fatalf("latencies from the edit %v, want [7ms]", latEdit)
	}
	if incomplete != 1 {
		t.Fatalf("incomplete = %d, want 1 (c's seq 7)", incomplete)
	}
	if unknown != 3 {
		t.Fatalf("unknown = %d, want 3", unknown)
	}
}

// metricsSample is a /metrics page in the shape client_golang writes.
const metricsSample = `# HELP collabd_commit_seconds Wall time of one store commit.
# TYPE collabd_commit_seconds histogram
collabd_commit_seconds_bucket{le="0.001"} 3
collabd_commit_seconds_bucket{le="+Inf"} 10
collabd_commit_seconds_sum 0.05
collabd_commit_seconds_count 10
# HELP collabd_commits_total Store commits.
# TYPE collabd_commits_total counter
collabd_commits_total 12
collabd_ops_total{result="ok",doc="a}b \"q\""} 7 1700000000000
go_goroutines 9
`

func TestParsePrometheus(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []promSample
		count int
	}{
		{"plain", "a 1\n", []promSample{{Name: "a", Value: 1}}, 1},
		{"labels and timestamp", `b{x="1",y="}"} 2.5 123` + "\n", []promSample{{Name: "b", Labels: `x="1",y="}"`, Value: 2.5}}, 1},
		{"escaped quote in a label", `c{x="a\"}"} 3`, []promSample{{Name: "c", Labels: `x="a\"}"`, Value: 3}}, 1},
		{"comments, blanks, garbage skipped", "# HELP a b\n\nnovalue\nd{x=\"1\" 4\ne NaNx\nf +Inf\n", []promSample{{Name: "f", Value: math.Inf(1)}}, 1},
		{"tabs", "g\t4\n", []promSample{{Name: "g", Value: 4}}, 1},
		{"real page", metricsSample, nil, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePrometheus([]byte(tt.in))
			if len(got) != tt.count {
				t.Fatalf("%d samples %+v, want %d", len(got), got, tt.count)
			}
			for i, w := range tt.want {
				if got[i] != w {
					t.Fatalf("sample %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestCommitMetrics(t *testing.T) {
	m0 := commitMetricsOf(parsePrometheus([]byte(metricsSample)))
	if !m0.Found || !m0.CommitsFound || m0.Commits != 12 || m0.CommitSum != 0.05 || m0.CommitCount != 10 {
		t.Fatalf("commit metrics %+v", m0)
	}
	later := strings.NewReplacer("_sum 0.05", "_sum 0.25", "_count 10", "_count 60", "commits_total 12", "commits_total 62").Replace(metricsSample)
	m1 := commitMetricsOf(parsePrometheus([]byte(later)))
	w, ok := commitsBetween(m0, m1)
	if !ok || w.Commits != 50 || w.MeanCommit != 4*time.Millisecond {
		t.Fatalf("window %+v ok=%v, want 50 commits of 4ms", w, ok)
	}
	// Without collabd_commits_total the histogram count stands in.
	noTotal := func(s string) commitMetrics {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "collabd_commits_total") {
				keep = append(keep, l)
			}
		}
		return commitMetricsOf(parsePrometheus([]byte(strings.Join(keep, "\n"))))
	}
	if w, ok := commitsBetween(noTotal(metricsSample), noTotal(later)); !ok || w.Commits != 50 {
		t.Fatalf("without the counter: %+v ok=%v", w, ok)
	}
	if _, ok := commitsBetween(commitMetrics{}, m1); ok {
		t.Fatal("a window from a failed scrape must not be reported")
	}
}

func FuzzParsePrometheus(f *testing.F) {
	f.Add([]byte(metricsSample))
	f.Add([]byte(`x{a="\\"} 1`))
	f.Add([]byte("x{ 1\n}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range parsePrometheus(b) {
			if s.Name == "" || strings.ContainsAny(s.Name, "{ \t\n") {
				t.Fatalf("bad sample name %q", s.Name)
			}
		}
	})
}

func TestFirstArg(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantRev uint64
		wantErr bool
	}{
		{"ack", `[{"ok":true,"rev":4}]`, 4, false},
		{"extra offset argument", `[{"ok":true,"rev":5},"offset-1"]`, 5, false},
		{"no argument", `[]`, 0, true},
		{"not an array", `{"ok":true}`, 0, true},
		{"wrong type", `[{"ok":true,"rev":"x"}]`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a ackMsg
			err := firstArg([]byte(tt.in), &a)
			if (err != nil) != tt.wantErr || a.Rev != tt.wantRev {
				t.Fatalf("firstArg(%s) = %+v, %v", tt.in, a, err)
			}
		})
	}
	var a ackMsg
	if err := firstArg([]byte(`[{"ok":false,"error":{"code":"rate_limited","message":"slow down"}}]`), &a); err != nil {
		t.Fatal(err)
	}
	if err := a.err(); err == nil || !strings.Contains(err.Error(), "rate_limited") {
		t.Fatalf("error ack: %v", err)
	}
}

func TestParseCollabFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"binary", []string{"--collabd", "/bin/collabd"}, false},
		{"url with shape", []string{"--url", "http://127.0.0.1:1/", "--docs", "100", "--editors", "4"}, false},
		{"open loop", []string{"--url", "http://x/", "--rate", "10"}, false},
		{"neither server", []string{"--docs", "1"}, true},
		{"both servers", []string{"--collabd", "a", "--url", "b"}, true},
		{"no editors", []string{"--collabd", "a", "--editors", "0"}, true},
		{"negative rate", []string{"--collabd", "a", "--rate", "-1"}, true},
		{"profile needs a started server", []string{"--url", "b", "--server-profile", "p"}, true},
		{"stray argument", []string{"--collabd", "a", "extra"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCollabFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseCollabFlags(%q) err = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	tests := []struct {
		labels, name, want string
		ok                 bool
	}{
		{`le="0.5"`, "le", "0.5", true},
		{`a="x,y",le="+Inf"`, "le", "+Inf", true},
		{`a="q\"le=\"1\"", le="2"`, "le", "2", true},
		{`a="1"`, "le", "", false},
		{`le=0.5`, "le", "", false},
		{`le="0.5`, "le", "", false},
		{``, "le", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.labels, func(t *testing.T) {
			got, ok := labelValue(tt.labels, tt.name)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("labelValue(%q, %q) = %q, %v; want %q, %v", tt.labels, tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := map[float64]float64{0.001: 5, 0.002: 5, 0.004: 5, inf: 5}
	after := map[float64]float64{0.001: 55, 0.002: 104, 0.004: 105, inf: 105} // window: 50 <=1ms, 49 in (1,2], 1 in (2,4]
	tests := []struct {
		name string
		a, b map[float64]float64
		q    float64
		want time.Duration
	}{
		{"p50 in the first bucket", before, after, 0.50, time.Millisecond},
		{"p99 in the second", before, after, 0.99, 2 * time.Millisecond},
		{"p100 in the third", before, after, 1, 4 * time.Millisecond},
		{"no buckets", nil, nil, 0.5, 0},
		{"no commits in the window", after, after, 0.5, 0},
		{"only +Inf covers it", map[float64]float64{}, map[float64]float64{0.001: 1, inf: 10}, 0.5, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bucketQuantile(tt.a, tt.b, tt.q); got != tt.want {
				t.Fatalf("bucketQuantile = %v, want %v", got, tt.want)
			}
		})
	}
	// Through the page parser and commitsBetween.
	m0 := commitMetricsOf(parsePrometheus([]byte(metricsSample)))
	later := strings.NewReplacer(`le="0.001"} 3`, `le="0.001"} 53`, `le="+Inf"} 10`, `le="+Inf"} 60`,
		"_count 10", "_count 60", "_sum 0.05", "_sum 0.1").Replace(metricsSample)
	w, ok := commitsBetween(m0, commitMetricsOf(parsePrometheus([]byte(later))))
	if !ok || w.P50Commit != time.Millisecond || w.P99Commit != time.Millisecond || w.MeanCommit != time.Millisecond {
		t.Fatalf("window %+v, want every commit within 1ms", w)
	}
}
