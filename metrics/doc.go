// Package metrics is a small Prometheus text exposition (format 0.0.4) writer
// for collabd: counters, gauges read from functions, and histograms with fixed
// buckets. collabd exports about fifteen series; this package covers them in a
// few hundred lines instead of client_golang's dependency tree, in keeping
// with "one small binary".
//
// # Concurrency
//
// Registering (Counter, CounterFunc, GaugeFunc, Histogram) and exposing
// (WriteTo, ServeHTTP) are safe for concurrent use. Counter.Add and
// Histogram.Observe are lock-free (atomics) and may be called from any
// goroutine, including hot paths such as the commit loop. The functions given
// to CounterFunc and GaugeFunc run on the goroutine that exposes the metrics,
// once per scrape; they must be safe to call concurrently with everything else
// and must not block.
package metrics
