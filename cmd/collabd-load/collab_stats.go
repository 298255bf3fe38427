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
	submitted time.Time
	remaining int  // editors that have not applied it yet
	measured  bool // submitted inside the measured window
}

// e2eTracker matches the broadcasts of one document to their submissions
// and records, for each op submitted in the measured window, the time from
// its submission until the last other editor applied it. Safe for
// concurrent use.
type e2eTracker struct {
	byClient func(string) (int, bool) // client id -> editor index; read-only

	mu       sync.Mutex           // guards the fields below
	pend     map[opKey]*pendingOp // submitted, not yet applied everywhere
	lat      *sampler             // measured end-to-end latencies
	complete int                  // measured ops applied on every other editor
	unknown  int                  // broadcasts that matched no submission
}

func newE2ETracker(seed uint64, byClient func(string) (int, bool)) *e2eTracker {
	return &e2eTracker{pend: map[opKey]*pendingOp{}, lat: newSampler(1<<18, seed), byClient: byClient}
}

// submitted registers an op that the other editors must apply.
func (t *e2eTracker) submitted(k opKey, at time.Time, others int, measured bool) {
	if others <= 0 {
		return
	}
	t.mu.Lock()
	t.pend[k] = &pendingOp{submitted: at, remaining: others, measured: measured}
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
	}
}

// results returns the measured latencies, the measured ops still not applied
// everywhere and the broadcasts that matched nothing.
func (t *e2eTracker) results() (lat []time.Duration, incomplete, unknown int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pend {
		if p.measured {
			incomplete++
		}
	}
	return slices.Clone(t.lat.xs), incomplete, t.unknown
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
	Found        bool    // any of the metrics was present
	Commits      float64 // collabd_commits_total
	CommitSum    float64 // collabd_commit_seconds_sum
	CommitCount  float64 // collabd_commit_seconds_count
	CommitsFound bool    // collabd_commits_total was present
}

// commitMetricsOf sums the commit metrics over their label sets.
func commitMetricsOf(samples []promSample) commitMetrics {
	var m commitMetrics
	for _, s := range samples {
		switch s.Name {
		case "collabd_commits_total":
			m.Commits += s.Value
			m.CommitsFound = true
		case "collabd_commit_seconds_sum":
			m.CommitSum += s.Value
		case "collabd_commit_seconds_count":
			m.CommitCount += s.Value
		default:
			continue
		}
		m.Found = true
	}
	return m
}

// commitWindow is what the server committed between two scrapes.
type commitWindow struct {
	Commits    float64       // batches (collabd_commits_total, else the histogram count)
	MeanCommit time.Duration // mean wall time of a commit (histogram sum / count)
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
	if n := b.CommitCount - a.CommitCount; n > 0 {
		w.MeanCommit = time.Duration((b.CommitSum - a.CommitSum) / n * float64(time.Second))
	}
	return w, true
}
