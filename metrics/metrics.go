package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

var validName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

type kind string

const (
	kindCounter   kind = "counter"
	kindGauge     kind = "gauge"
	kindHistogram kind = "histogram"
)

// family is one metric name with its HELP and TYPE lines.
type family struct {
	name, help string
	kind       kind
	write      func(w *bufio.Writer, name string)
}

// Registry holds metrics and writes them in registration order.
type Registry struct {
	mu       sync.Mutex // guards families
	families []*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// register adds f; it panics on an invalid or duplicate name, a programming error.
func (r *Registry) register(f *family) {
	if !validName.MatchString(f.name) {
		panic("metrics: invalid metric name " + strconv.Quote(f.name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.families {
		if g.name == f.name {
			panic("metrics: duplicate metric " + f.name)
		}
	}
	r.families = append(r.families, f)
}

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Counter registers and returns a counter. Names of counters end in _total
// by convention.
func (r *Registry) Counter(name, help string) *Counter {
	c := &Counter{}
	r.register(&family{name: name, help: help, kind: kindCounter, write: func(w *bufio.Writer, name string) {
		writeSample(w, name, "", float64(c.Value()))
	}})
	return c
}

// CounterFunc registers a counter whose value fn returns at each scrape.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.register(&family{name: name, help: help, kind: kindCounter, write: func(w *bufio.Writer, name string) {
		writeSample(w, name, "", fn())
	}})
}

// GaugeFunc registers a gauge whose value fn returns at each scrape.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.register(&family{name: name, help: help, kind: kindGauge, write: func(w *bufio.Writer, name string) {
		writeSample(w, name, "", fn())
	}})
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	upper  []float64       // bucket upper bounds, ascending, without +Inf
	counts []atomic.Uint64 // counts[i]: observations <= upper[i] and > upper[i-1]; last: above every bound
	sum    atomic.Uint64   // float64 bits of the sum of observations
	count  atomic.Uint64
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v) // first bound >= v
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	h.count.Add(1)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Histogram registers a histogram with the given upper bounds (ascending;
// +Inf is implicit). It panics if buckets are not strictly ascending.
func (r *Registry) Histogram(name, help string, buckets []float64) *Histogram {
	for i := 1; i < len(buckets); i++ {
		if !(buckets[i] > buckets[i-1]) {
			panic("metrics: histogram buckets not ascending: " + name)
		}
	}
	h := &Histogram{upper: slices.Clone(buckets), counts: make([]atomic.Uint64, len(buckets)+1)}
	r.register(&family{name: name, help: help, kind: kindHistogram, write: func(w *bufio.Writer, name string) {
		// _count is the sum of the buckets read here, so the +Inf bucket
		// and _count always agree; _sum may lag by an observation in
		// flight (the series are not read atomically).
		var cum uint64
		for i, ub := range h.upper {
			cum += h.counts[i].Load()
			writeSample(w, name+"_bucket", `le="`+formatFloat(ub)+`"`, float64(cum))
		}
		cum += h.counts[len(h.upper)].Load()
		writeSample(w, name+"_bucket", `le="+Inf"`, float64(cum))
		writeSample(w, name+"_sum", "", math.Float64frombits(h.sum.Load()))
		writeSample(w, name+"_count", "", float64(cum))
	}})
	return h
}

// ExponentialBuckets returns n bounds start, start*factor, ...
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// RegisterGoRuntime adds go_goroutines, go_memstats_heap_alloc_bytes and
// go_memstats_sys_bytes, read with runtime/metrics (no stop-the-world).
func (r *Registry) RegisterGoRuntime() {
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	r.GaugeFunc("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", runtimeSample("/memory/classes/heap/objects:bytes"))
	r.GaugeFunc("go_memstats_sys_bytes", "Bytes of memory obtained from the OS.", runtimeSample("/memory/classes/total:bytes"))
}

// runtimeSample returns a function reading one uint64 runtime metric.
func runtimeSample(name string) func() float64 {
	return func() float64 {
		s := []rtmetrics.Sample{{Name: name}}
		rtmetrics.Read(s)
		if s[0].Value.Kind() != rtmetrics.KindUint64 {
			return math.NaN()
		}
		return float64(s[0].Value.Uint64())
	}
}

// WriteTo writes every metric in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		f.write(bw, f.name)
	}
	err := bw.Flush()
	return cw.n, err
}

// ServeHTTP writes the metrics as the response.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = r.WriteTo(w)
}

func writeSample(w *bufio.Writer, name, labels string, v float64) {
	w.WriteString(name)
	if labels != "" {
		w.WriteByte('{')
		w.WriteString(labels)
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
