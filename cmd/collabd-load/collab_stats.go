//go:build linux

package main

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// quantile returns the nearest-rank q-quantile (0 < q <= 1) of sorted: the
// smallest sample that at least q of the samples do not exceed. It returns 0
// for no samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// latencySummary is the distribution of a set of latency samples.
type latencySummary struct {
	N                  int // samples summarized
	P50, P95, P99, Max time.Duration
}

func summarize(samples []time.Duration) latencySummary {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		return latencySummary{}
	}
	return latencySummary{N: len(s), P50: quantile(s, 0.50), P95: quantile(s, 0.95), P99: quantile(s, 0.99), Max: s[len(s)-1]}
}

func (l latencySummary) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return "p50 " + r(l.P50) + ", p95 " + r(l.P95) + ", p99 " + r(l.P99) + ", max " + r(l.Max) + " (" + strconv.Itoa(l.N) + " samples)"
}

// sampler keeps at most max latency samples: every sample while there is
// room, then a uniform reservoir sample of all it was given (algorithm R).
// It is not safe for concurrent use.
type sampler struct {
	max  int
	seen int64
	xs   []time.Duration
	rng  *rand.Rand
}

func newSampler(max int, seed uint64) *sampler {
	return &sampler{max: max, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (s *sampler) add(d time.Duration) {
	s.seen++
	if len(s.xs) < s.max {
		s.xs = append(s.xs, d)
		return
	}
	if j := s.rng.Int64N(s.seen); j < int64(s.max) {
		s.xs[j] = d
	}
}

// opKey names one submitted op: the author (editor index within its
// document) and its seq.
type opKey struct {
	author int
	seq    uint64
}

type pendingOp struct {
	edited    time.Time // the first local edit the op holds
	submitted time.Time // the op was emitted
	remaining int       // editors that have not applied it yet
	measured  bool      // submitted inside the measured window
}

// e2eTracker matches the broadcasts of one document to their submissions
// and records, for each op submitted in the measured window, the time from
// its submission until the last other editor applied it. Safe for
// concurrent use.
type e2eTracker struct {
	byClient func(string) (int, bool) // client id -> editor index; read-only

	mu       sync.Mutex           // guards the fields below
	pend     map[opKey]*pendingOp // submitted, not yet applied everywhere
	lat      *sampler             // measured end-to-end latencies from the submission
	latEdit  *sampler             // the same from the first local edit the op holds
	complete int                  // measured ops applied on every other editor
	unknown  int                  // broadcasts that matched no submission
}

func newE2ETracker(seed uint64, byClient func(string) (int, bool)) *e2eTracker {
	return &e2eTracker{pend: map[opKey]*pendingOp{}, lat: newSampler(1<<18, seed), latEdit: newSampler(1<<18, seed+1), byClient: byClient}
}

// submitted registers an op that the other editors must apply: emitted at
// sent, holding local edits made since edited.
func (t *e2eTracker) submitted(k opKey, edited, sent time.Time, others int, measured bool) {
	if others <= 0 {
		return
	}
	t.mu.Lock()
	t.pend[k] = &pendingOp{edited: edited, submitted: sent, remaining: others, measured: measured}
	t.mu.Unlock()
}

// applied records that one editor applied the op (client, seq) at now.
func (t *e2eTracker) applied(client string, seq uint64, now time.Time) {
	a, ok := t.byClient(client)
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pend[opKey{a, seq}]
	if !ok || p == nil {
		t.unknown++
		return
	}
	p.remaining--
	if p.remaining > 0 {
		return
	}
	delete(t.pend, opKey{a, seq})
	if p.measured {
		t.complete++
		t.lat.add(now.Sub(p.submitted))
		t.latEdit.add(now.Sub(p.edited))
	}
}

// results returns the measured latencies (from the submission and from the
// first edit), the measured ops still not applied everywhere and the
// broadcasts that matched nothing.
func (t *e2eTracker) results() (lat, latEdit []time.Duration, incomplete, unknown int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pend {
		if p.measured {
			incomplete++
		}
	}
	return slices.Clone(t.lat.xs), slices.Clone(t.latEdit.xs), incomplete, t.unknown
}

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	Name   string
	Labels string // the raw text between the braces, "" without labels
	Value  float64
}

// parsePrometheus reads the sample lines of a Prometheus text exposition
// (comments and malformed lines are skipped; a timestamp after the value is
// ignored).
func parsePrometheus(b []byte) []promSample {
	var out []promSample
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s promSample
		rest := ""
		if i := strings.IndexAny(line, "{ \t"); i < 0 {
			continue
		} else if line[i] == '{' {
			// Label values are quoted strings that may hold '}' or escaped quotes.
			j, ok := endOfLabels(line, i+1)
			if !ok {
				continue
			}
			s.Name, s.Labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			s.Name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if s.Name == "" || len(fields) == 0 || len(fields) > 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.Value = v
		out = append(out, s)
	}
	return out
}

// endOfLabels returns the index of the '}' closing a label set that starts
// at i (just after '{').
func endOfLabels(line string, i int) (int, bool) {
	inQuote := false
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return i, true
		}
	}
	return 0, false
}

// commitMetrics are the server's commit counters from /metrics.
type commitMetrics struct {
	Found        bool    // any of the commit metrics was present
	Commits      float64 // collabd_commits_total
	CommitsFound bool    // collabd_commits_total was present
	CommitSum    float64 // collabd_commit_seconds_sum
	CommitCount  float64 // collabd_commit_seconds_count
	// Buckets are the cumulative counts of collabd_commit_seconds_bucket by
	// upper bound in seconds (+Inf included).
	Buckets map[float64]float64
	Ops     float64 // collabd_ops_committed_total
	Dropped float64 // collabd_broadcast_dropped_total + collabd_slow_clients_closed_total
	// Cluster holds the counters of cluster mode, collabd_cluster_*_total,
	// by name, summed over their label sets (and over the nodes scraped).
	Cluster map[string]float64
}

// commitMetricsOf sums the commit metrics over their label sets.
func commitMetricsOf(samples []promSample) commitMetrics {
	m := commitMetrics{Buckets: map[float64]float64{}, Cluster: map[string]float64{}}
	for _, s := range samples {
		switch s.Name {
		case "collabd_commits_total":
			m.Commits += s.Value
			m.CommitsFound = true
		case "collabd_commit_seconds_sum":
			m.CommitSum += s.Value
		case "collabd_commit_seconds_count":
			m.CommitCount += s.Value
		case "collabd_commit_seconds_bucket":
			le, ok := labelValue(s.Labels, "le")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			m.Buckets[v] += s.Value
		case "collabd_ops_committed_total":
			m.Ops += s.Value
			continue
		case "collabd_broadcast_dropped_total", "collabd_slow_clients_closed_total":
			m.Dropped += s.Value
			continue
		default:
			if strings.HasPrefix(s.Name, "collabd_cluster_") && strings.HasSuffix(s.Name, "_total") {
				m.Cluster[s.Name] += s.Value
			}
			continue
		}
		m.Found = true
	}
	return m
}

// labelValue returns the value of label name in a raw label set
// (`a="1",le="0.5"`); escapes are not decoded (le values have none).
func labelValue(labels, name string) (string, bool) {
	for labels != "" {
		eq := strings.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return "", false
		}
		key := strings.TrimSpace(labels[:eq])
		end, ok := endOfQuoted(labels, eq+2)
		if !ok {
			return "", false
		}
		if key == name {
			return labels[eq+2 : end], true
		}
		labels = strings.TrimLeft(labels[end+1:], ", ")
	}
	return "", false
}

// endOfQuoted returns the index of the quote closing a string whose body
// starts at i.
func endOfQuoted(s string, i int) (int, bool) {
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i, true
		}
	}
	return 0, false
}

// commitWindow is what the server committed between two scrapes.
type commitWindow struct {
	Commits    float64       // batches (collabd_commits_total, else the histogram count)
	MeanCommit time.Duration // mean wall time of a commit (histogram sum / count)
	// P50Commit and P99Commit are upper bounds from the histogram buckets:
	// the smallest bucket bound holding that share of the window's commits
	// (0 when unknown, -1 when only +Inf does).
	P50Commit, P99Commit time.Duration
	Ops                  float64 // ops the server committed (collabd_ops_committed_total)
	Dropped              float64 // broadcasts dropped and slow clients closed
	// Cluster is the growth of each collabd_cluster_*_total counter
	// present at the window's end.
	Cluster map[string]float64
}

func commitsBetween(a, b commitMetrics) (commitWindow, bool) {
	if !a.Found || !b.Found {
		return commitWindow{}, false
	}
	var w commitWindow
	w.Commits = b.CommitCount - a.CommitCount
	if b.CommitsFound {
		w.Commits = b.Commits - a.Commits
	}
	n := b.CommitCount - a.CommitCount
	if n > 0 {
		w.MeanCommit = time.Duration((b.CommitSum - a.CommitSum) / n * float64(time.Second))
		w.P50Commit = bucketQuantile(a.Buckets, b.Buckets, 0.50)
		w.P99Commit = bucketQuantile(a.Buckets, b.Buckets, 0.99)
	}
	w.Ops, w.Dropped = b.Ops-a.Ops, b.Dropped-a.Dropped
	w.Cluster = map[string]float64{}
	for name, v := range b.Cluster {
		w.Cluster[name] = v - a.Cluster[name]
	}
	return w, true
}

// bucketQuantile returns the smallest bucket bound whose count in the
// window (b minus a) covers the q-quantile: 0 without buckets, -1 when only
// the +Inf bucket does.
func bucketQuantile(a, b map[float64]float64, q float64) time.Duration {
	bounds := make([]float64, 0, len(b))
	for le := range b {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := b[bounds[len(bounds)-1]] - a[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	for _, le := range bounds {
		if b[le]-a[le] >= q*total {
			if math.IsInf(le, 1) {
				return -1
			}
			return time.Duration(le * float64(time.Second))
		}
	}
	return -1
}
