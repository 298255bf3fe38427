//go:build linux

package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/ot"
)

// errDiverged reports editors whose text differs from the server's after the
// run: the convergence check failed.
var errDiverged = errors.New("collabd-load: editors diverged from the server")

// collabConfig holds the flags of "collabd-load collab".
type collabConfig struct {
	collabd     string        // collabd binary to start; "" with url
	url         string        // a running server's base URL; "" with collabd
	serverFlags string        // extra flags for the started collabd, space-separated
	profile     string        // write a CPU profile of the server over the measured window here
	selfProfile string        // write a CPU profile of the load program over the window here
	docs        int           // documents
	editors     int           // editors per document
	rate        float64       // edits per second per editor; 0 = closed loop
	maxBuffered int           // open loop: local edits buffered behind the op in flight, at most
	duration    time.Duration // measured window
	warmup      time.Duration // load before the measured window
	drain       time.Duration // wait at most this long for the last acks and broadcasts
	maxOps      int64         // submissions in the whole run, at most
	docSize     int           // code points a document is kept near
	seed        uint64        // random edits; 0 = random
	deadline    time.Duration // give up after this long in total
	keepData    bool          // keep the started server's data directory
	webhookSink string        // none, ok or hang: a webhook endpoint for the started collabd
	nodes       int           // collabd nodes to start: 0 or 1 a single node on bbolt, 2 or more on a nats-server
	natsServer  string        // nats-server binary for --nodes >= 2; "" builds it from the module
	out         io.Writer     // the report
	args        []string      // the flags, echoed in the report
}

func parseCollabFlags(args []string) (collabConfig, error) {
	c := collabConfig{out: out, args: args}
	fs := flag.NewFlagSet("collab", flag.ContinueOnError)
	fs.StringVar(&c.collabd, "collabd", "", "collabd binary to start (with --addr 127.0.0.1:0 --data <tmpdir> --log-level warn); its CPU and RSS are measured")
	fs.StringVar(&c.url, "url", "", "base URL of a running collabd (instead of --collabd; no server CPU/RSS figures)")
	fs.StringVar(&c.serverFlags, "server-flags", "", "extra flags for the started collabd, space-separated")
	fs.StringVar(&c.profile, "server-profile", "", "write a CPU profile of the started collabd over the measured window to this file, and a heap profile at its end to FILE.heap (starts it with --pprof-addr)")
	fs.StringVar(&c.selfProfile, "client-profile", "", "write a CPU profile of the load program itself over the measured window to this file")
	fs.IntVar(&c.docs, "docs", 1, "documents")
	fs.IntVar(&c.editors, "editors", 8, "editors per document (one Socket.IO connection each)")
	fs.Float64Var(&c.rate, "rate", 0, "edits per second per editor (open loop); 0: closed loop, one op in flight per editor")
	fs.IntVar(&c.maxBuffered, "max-buffered", 64, "open loop: at most this many local edits wait behind the op in flight (more are skipped)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "load before the measured window")
	fs.DurationVar(&c.drain, "drain", 15*time.Second, "after the window: wait at most this long for the last acks and broadcasts")
	fs.Int64Var(&c.maxOps, "max-ops", 5_000_000, "submissions in the whole run, at most")
	fs.IntVar(&c.docSize, "doc-size", 2000, "code points each document is kept near (past it, deletes outnumber inserts)")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of the random edits (0: random)")
	fs.DurationVar(&c.deadline, "deadline", 5*time.Minute, "give up after this long in total")
	fs.BoolVar(&c.keepData, "keep-data", false, "keep the started server's data directory")
	fs.IntVar(&c.nodes, "nodes", 1, "collabd processes to start (with --collabd): 0 or 1, one node on its bbolt file; N >= 2, a nats-server (JetStream on a temporary store, default sync_interval) and N nodes with --nats on it, the editors spread over them round-robin")
	fs.StringVar(&c.natsServer, "nats-server", "", "nats-server binary for --nodes >= 2 (default: go build of the module's nats-server tool, run inside the collabd module)")
	fs.StringVar(&c.webhookSink, "webhook-sink", "none", "start a webhook endpoint and point the started collabd at it (--webhook-debounce 100ms): none, ok (answers 204) or hang (never answers)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case (c.collabd == "") == (c.url == ""):
		return c, errors.New("give exactly one of --collabd PATH and --url URL")
	case c.docs < 1 || c.editors < 1:
		return c, errors.New("--docs and --editors must be at least 1")
	case c.rate < 0 || c.duration <= 0 || c.warmup < 0 || c.maxBuffered < 1 || c.maxOps < 1:
		return c, errors.New("--rate, --warmup must be >= 0, --duration > 0, --max-buffered and --max-ops >= 1")
	case c.profile != "" && c.collabd == "":
		return c, errors.New("--server-profile needs --collabd")
	case c.nodes < 0:
		return c, errors.New("--nodes must be >= 0")
	case c.nodes >= 2 && c.collabd == "":
		return c, errors.New("--nodes >= 2 needs --collabd (the nodes are started here)")
	case c.nodes >= 2 && c.profile != "":
		return c, errors.New("--server-profile profiles one node: not with --nodes >= 2")
	}
	return c, nil
}

func runCollabCmd(args []string) error {
	c, err := parseCollabFlags(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = runCollab(ctx, c)
	return err
}

// collabResult is what one run measured (also printed).
type collabResult struct {
	Window      time.Duration
	Committed   int64 // acks received in the window
	OpsPerSec   float64
	Submitted   int64 // doc:op emitted in the whole run (retries excluded)
	RateLimited int64 // rate_limited acks (the op was sent again)
	Skipped     int64 // open loop: edits skipped because the buffer was full

	E2E           latencySummary // from the submission (emit of doc:op)
	E2EFromEdit   latencySummary // from the first local edit the op holds
	E2EIncomplete int            // measured ops some editor never applied
	E2EUnknown    int            // broadcasts that matched no submission
	Ack           latencySummary
	// With several nodes: the acks in the window and the ack latency of
	// the editors on each node (editors are spread round-robin).
	CommittedByNode []int64
	AckByNode       []latencySummary
	ClientCPU       time.Duration
	// The machine's CPU time over the window (/proc/stat): the shares
	// run, idle, and taken by the hypervisor for other guests (steal).
	HaveHostCPU                   bool
	HostBusy, HostIdle, HostSteal float64
	HaveServer                    bool          // the server was started here: the figures below are set
	ServerUser, ServerSys         time.Duration // summed over the nodes and the nats-server
	CPUPerOp                      time.Duration
	// Cluster runs (--nodes >= 2): the nats-server's share of the figures
	// above, and its memory (not in PeakRSS and the others, which sum the
	// collabd nodes).
	Nodes                   int
	HaveNATS                bool
	NATSCPU                 time.Duration
	NATSPeakRSS, NATSEndRSS int64
	// Read-type and write-type system calls of the server over the
	// window (/proc/PID/io), when readable.
	HaveSyscalls              bool
	ServerReads, ServerWrites uint64
	// Context switches of the server's threads over the window.
	HaveSwitches     bool
	ServerSwitches   uint64
	PeakRSS, EndRSS  int64
	EndAnon, EndFile int64 // RssAnon and RssFile+RssShmem at the end
	HaveCommits      bool
	Commits          commitWindow
	P99InCommits     float64
	Converged        bool
	ExitCode         int
}

// collabRun is the shared state of one run.
type collabRun struct {
	cfg    collabConfig
	closed bool // closed loop

	phase       atomic.Int32 // phaseWarmup, phaseMeasure, phaseStop
	committed   atomic.Int64
	byNode      []atomic.Int64 // committed, by the node of the editor; set before the load starts
	submitted   atomic.Int64
	rateLimited atomic.Int64
	skipped     atomic.Int64

	errOnce sync.Once
	err     error         // the first failure; set once, read after failed is closed
	failed  chan struct{} // closed on the first failure
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

func (r *collabRun) fail(err error) {
	r.errOnce.Do(func() {
		r.err = err
		close(r.failed)
	})
}

func (r *collabRun) failure() error {
	select {
	case <-r.failed:
		return r.err
	default:
		return nil
	}
}

// docRun is one document and its editors.
type docRun struct {
	id      string
	editors []*editor
	clients map[string]int // client id -> editor index; read-only once built
	track   *e2eTracker
}

// editor is one Socket.IO connection editing one document.
type editor struct {
	run  *collabRun
	doc  *docRun
	idx  int
	id   string // client id
	cl   *sioclient.Client
	node int // index of the node it is connected to; set before it connects

	mu           sync.Mutex // guards the fields below
	st           *otClient  // nil until joined
	seq          uint64     // seq of the op in flight (or the last one)
	sentAt       time.Time  // first local edit of the op in flight
	emittedAt    time.Time  // the op in flight was first emitted
	sentMeasured bool       // the op in flight was sent in the measured window
	bufAt        time.Time  // first local edit in the buffer
	bufEdits     int        // local edits in the buffer
	rng          *mrand.Rand
	ack          *sampler // measured ack latencies
}

// opMsg is the payload of a submitted doc:op.
type opMsg struct {
	Doc    string `json:"doc"`
	Client string `json:"client"`
	Seq    uint64 `json:"seq"`
	Rev    uint64 `json:"rev"`
	Op     ot.Op  `json:"op"`
}

// ackMsg is an ack payload ({ok, rev, text, error}).
type ackMsg struct {
	OK    bool   `json:"ok"`
	Rev   uint64 `json:"rev"`
	Text  string `json:"text"`
	Error *struct {
		Code    contract.Code `json:"code"`
		Message string        `json:"message"`
	} `json:"error"`
}

func (a ackMsg) err() error {
	if a.OK {
		return nil
	}
	if a.Error == nil {
		return errors.New("ack with ok:false and no error")
	}
	return fmt.Errorf("%s: %s", a.Error.Code, a.Error.Message)
}

// recordMsg is the payload of a doc:op broadcast.
type recordMsg struct {
	Doc    string `json:"doc"`
	Rev    uint64 `json:"rev"`
	Op     ot.Op  `json:"op"`
	Client string `json:"client"`
	Seq    uint64 `json:"seq"`
}

// firstArg decodes the first element of a JSON argument array into v (a
// pointer); the server may append more arguments, e.g. a
// connection-state-recovery offset, which are skipped.
func firstArg[T any](args []byte, v *T) error {
	var arr [1]*T // one pass; extra elements are discarded
	arr[0] = v
	if err := json.Unmarshal(args, &arr); err != nil {
		return err
	}
	if arr[0] == nil {
		return errors.New("no argument")
	}
	return nil
}

// onEvent runs on the client's reader goroutine.
func (e *editor) onEvent(name string, args []byte) {
	if name != "doc:op" {
		return
	}
	now := time.Now()
	m, err := decodeRecord(args)
	if err != nil {
		e.run.fail(fmt.Errorf("editor %s: bad doc:op broadcast %.200s: %w", e.id, args, err))
		return
	}
	if m.Client == e.id {
		e.run.fail(fmt.Errorf("editor %s received its own op (seq %d, rev %d) as a broadcast", e.id, m.Seq, m.Rev))
		return
	}
	e.mu.Lock()
	if e.st == nil {
		err = errors.New("broadcast before the join ack")
	} else {
		err = e.st.remote(m.Rev, m.Op)
	}
	e.mu.Unlock()
	if err != nil {
		e.run.fail(fmt.Errorf("editor %s of %s: %w", e.id, e.doc.id, err))
		return
	}
	e.doc.track.applied(m.Client, m.Seq, now)
}

// localEdit makes one random edit now and sends it or buffers it. e.mu must
// be held.
func (e *editor) localEdit(now time.Time) {
	if e.run.submitted.Load() >= e.run.cfg.maxOps {
		return
	}
	send, err := e.st.edit(randomEdit(e.rng, e.st.text.Len(), e.run.cfg.docSize))
	if err != nil {
		e.run.fail(fmt.Errorf("editor %s: %w", e.id, err))
		return
	}
	if send {
		e.sentAt = now
		e.send(true)
		return
	}
	if e.bufEdits == 0 {
		e.bufAt = now
	}
	e.bufEdits++
}

// send emits the op in flight (a new seq, or the same again after
// rate_limited). e.mu must be held.
func (e *editor) send(fresh bool) {
	if fresh {
		e.seq++
		e.run.submitted.Add(1)
		e.sentMeasured = e.run.phase.Load() == phaseMeasure
		e.emittedAt = time.Now()
		e.doc.track.submitted(opKey{e.idx, e.seq}, e.sentAt, e.emittedAt, len(e.doc.editors)-1, e.sentMeasured)
	}
	seq := e.seq
	msg := opMsg{Doc: e.doc.id, Client: e.id, Seq: seq, Rev: e.st.rev, Op: e.st.sent}
	if err := e.cl.EmitAck(func(args []byte) { e.onAck(seq, args) }, "doc:op", msg); err != nil {
		e.run.fail(fmt.Errorf("editor %s: emitting doc:op: %w", e.id, err))
	}
}

// onAck runs on the client's reader goroutine.
func (e *editor) onAck(seq uint64, args []byte) {
	now := time.Now()
	a, err := decodeOpAck(args)
	if err != nil {
		e.run.fail(fmt.Errorf("editor %s: bad doc:op ack %.200s: %w", e.id, args, err))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !a.OK {
		if a.Error != nil && a.Error.Code == contract.CodeRateLimited {
			e.run.rateLimited.Add(1)
			time.AfterFunc(10*time.Millisecond, func() {
				e.mu.Lock()
				defer e.mu.Unlock()
				if e.seq == seq && e.run.failure() == nil {
					e.send(false)
				}
			})
			return
		}
		e.run.fail(fmt.Errorf("editor %s: doc:op seq %d: %w", e.id, seq, a.err()))
		return
	}
	if e.sentMeasured {
		e.ack.add(now.Sub(e.emittedAt))
	}
	if e.run.phase.Load() == phaseMeasure {
		e.run.committed.Add(1)
		e.run.byNode[e.node].Add(1)
	}
	send, err := e.st.ack(a.Rev)
	if err != nil {
		e.run.fail(fmt.Errorf("editor %s of %s: %w", e.id, e.doc.id, err))
		return
	}
	switch {
	case send:
		e.sentAt, e.bufEdits = e.bufAt, 0
		e.send(true)
	case e.run.closed && e.run.phase.Load() != phaseStop && e.run.failure() == nil:
		e.localEdit(now)
	}
}

// openLoop makes an edit every 1/rate seconds until the run stops.
func (e *editor) openLoop(ctx context.Context, stop <-chan struct{}) {
	every := time.Duration(float64(time.Second) / e.run.cfg.rate)
	e.mu.Lock()
	first := time.Duration(e.rng.Int64N(int64(every)))
	e.mu.Unlock()
	select {
	case <-time.After(first):
	case <-stop:
		return
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		e.mu.Lock()
		if e.bufEdits >= e.run.cfg.maxBuffered {
			e.run.skipped.Add(1)
		} else {
			e.localEdit(time.Now())
		}
		e.mu.Unlock()
		select {
		case <-t.C:
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-e.run.failed:
			return
		}
	}
}

// settled reports whether the editor has nothing in flight and its revision.
func (e *editor) settled() (bool, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.st.pending(), e.st.rev
}

// collabd is a collabd server process started by the load program.
type collabd struct {
	cmd     *exec.Cmd
	PID     int
	URL     string // base URL, with the trailing slash
	dataDir string
	done    chan struct{} // closed once Wait returned
	waitErr error         // set before done is closed
}

// startCollabd runs bin with --addr 127.0.0.1:0 --data dataDir --log-level
// warn plus extra, and waits (at most timeout) for its "collabd listening
// on http://HOST:PORT/" line on stdout or stderr. Every other line goes to
// this process's stderr.
func startCollabd(ctx context.Context, bin, dataDir string, extra []string, timeout time.Duration) (*collabd, error) {
	args := append([]string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	// If the load program dies, the server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &collabd{cmd: cmd, PID: cmd.Process.Pid, dataDir: dataDir, done: make(chan struct{})}
	urlc := make(chan string, 2)
	var pipes sync.WaitGroup
	scan := func(r io.Reader) {
		defer pipes.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := listeningURL(line); ok {
				select {
				case urlc <- u:
				default:
				}
				continue
			}
			fmt.Fprintln(os.Stderr, "collabd:", line)
		}
		_, _ = io.Copy(io.Discard, r)
	}
	pipes.Add(2)
	go scan(stdout)
	go scan(stderr)
	go func() {
		pipes.Wait() // Wait closes the pipes: read them to the end first
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case u := <-urlc:
		s.URL = u
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("collabd exited before listening: %v", s.waitErr)
	case <-t.C:
	case <-ctx.Done():
	}
	s.kill()
	return nil, errors.New("collabd did not print its URL in time")
}

// listeningURL finds "collabd listening on http://HOST:PORT/" in a line
// (plain, or inside a structured log line) and returns the base URL with a
// trailing slash.
func listeningURL(line string) (string, bool) {
	const marker = "collabd listening on "
	i := strings.Index(line, marker)
	if i < 0 {
		return "", false
	}
	u := line[i+len(marker):]
	if j := strings.IndexAny(u, " \t\"'"); j >= 0 {
		u = u[:j]
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
		return "", false
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u, true
}

func (s *collabd) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop sends SIGTERM and waits at most grace (then kills). It returns the
// exit code (-1 when killed by a signal).
func (s *collabd) stop(grace time.Duration) (int, error) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.kill()
		return -1, fmt.Errorf("collabd pid %d did not stop within %v; killed", s.PID, grace)
	}
	return s.cmd.ProcessState.ExitCode(), nil
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, b)
	}
	return b, nil
}

// scrapeCommits reads /metrics of every node and sums the commit metrics
// over them; nothing is found when a node does not answer.
func scrapeCommits(ctx context.Context, bases []string) commitMetrics {
	var all []promSample
	for _, base := range bases {
		b, err := httpGet(ctx, base+"metrics")
		if err != nil {
			return commitMetrics{}
		}
		all = append(all, parsePrometheus(b)...)
	}
	return commitMetricsOf(all)
}

// runCollab runs the collab workload and prints its report to c.out: start
// the server (or reach --url), make the editors, connect them, warm up,
// measure the window, drain, collect the figures, report, check that every
// editor converged on the server's text.
func runCollab(ctx context.Context, c collabConfig) (*collabResult, error) {
	w := c.out
	if w == nil {
		w = io.Discard
	}
	if _, err := raiseFileLimit(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	loadStart := loadAvg()
	res := &collabResult{ExitCode: -1}
	defer httpClient.CloseIdleConnections()

	if c.collabd == "" && c.webhookSink != "" && c.webhookSink != "none" {
		return nil, errors.New("--webhook-sink needs --collabd (a server started here)")
	}
	sink, sinkFlags, err := startWebhookSink(c.webhookSink)
	if err != nil {
		return nil, err
	}
	defer sink.close(w) // after the server stopped (deferred before tgt.close)
	if len(sinkFlags) > 0 {
		c.serverFlags += " " + strings.Join(sinkFlags, " ")
	}
	tgt, err := startTarget(ctx, c)
	if err != nil {
		return nil, err
	}
	res.HaveServer, res.Nodes, res.HaveNATS = tgt.proc != nil, len(tgt.nodes), tgt.nats != nil
	defer tgt.close(w, res) // deferred before disconnectAll, so it runs after it
	seed := c.seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	run, docs, all := newEditors(c, seed)
	run.byNode = make([]atomic.Int64, len(tgt.hosts))
	printHeader(w, c, tgt, run.closed, seed)

	// Connect and join every editor before anyone edits, so that every op
	// is broadcast to all the other editors of its document.
	if err := connectAndJoin(ctx, tgt.hosts, all); err != nil {
		return nil, err
	}
	defer disconnectAll(all)
	watchConnections(ctx, run, all)

	load := startLoad(ctx, run, all)
	defer load.stop()
	if err := run.sleep(ctx, c.warmup); err != nil {
		return nil, err
	}
	win, err := measureWindow(ctx, c, run, tgt, res)
	if err != nil {
		return nil, err
	}
	load.stop()
	res.Window = win.t1.Sub(win.t0)
	res.Committed = run.committed.Load()
	res.OpsPerSec = float64(res.Committed) / res.Window.Seconds()

	// Drain: every editor idle and at its document's head.
	drainErr := drain(ctx, run, docs, c.drain)
	collectResults(res, run, docs, win, tgt)
	writeReport(w, c, run.closed, res, loadStart)
	if err := run.failure(); err != nil {
		return res, err
	}
	if drainErr != nil {
		return res, drainErr
	}
	win.reportProfiles(w, c)
	if err := checkConvergence(ctx, w, tgt.bases, docs); err != nil {
		return res, err
	}
	res.Converged = true
	return res, nil
}

// target is the server a run loads: a collabd started here (--collabd) or
// a running one (--url).
type target struct {
	base        string      // base URL, with the trailing slash (the first node's)
	host        string      // host:port, for Socket.IO (the first node's)
	bases       []string    // every node's base URL
	hosts       []string    // every node's host:port: editors go round-robin over them
	proc        *collabd    // the started server (the first node); nil with --url
	nodes       []*collabd  // every node started here (proc is the first)
	nats        *natsServer // the started nats-server (--nodes >= 2)
	dataDir     string      // the started server's data directory (with --nodes >= 2 the root of the nodes' and nats-server's)
	keepData    bool        // --keep-data: close leaves dataDir
	profileAddr string      // the started server's --pprof-addr, with --server-profile
}

// startTarget starts collabd on a fresh temporary data directory (with
// --pprof-addr for --server-profile), or takes the --url.
func startTarget(ctx context.Context, c collabConfig) (*target, error) {
	if c.collabd == "" {
		base, host, err := baseAndHost(c.url)
		if err != nil {
			return nil, err
		}
		return &target{base: base, host: host, bases: []string{base}, hosts: []string{host}}, nil
	}
	dataDir, err := os.MkdirTemp("", "collabd-load-data-")
	if err != nil {
		return nil, err
	}
	t := &target{dataDir: dataDir, keepData: c.keepData}
	started := false
	defer func() {
		if !started {
			t.removeData()
		}
	}()
	extra := strings.Fields(c.serverFlags)
	if c.profile != "" {
		if t.profileAddr, err = freePort(); err != nil {
			return nil, err
		}
		extra = append(extra, "--pprof-addr", t.profileAddr)
	}
	if c.nodes >= 2 {
		if err := startCluster(ctx, c, dataDir, extra, t); err != nil {
			return nil, err
		}
	} else {
		p, err := startCollabd(ctx, c.collabd, dataDir, extra, 30*time.Second)
		if err != nil {
			return nil, err
		}
		t.nodes = []*collabd{p}
	}
	t.proc = t.nodes[0]
	for _, n := range t.nodes {
		base, host, err := baseAndHost(n.URL)
		if err != nil {
			t.stopServers(io.Discard, nil) // cannot happen: listeningURL checked the URL
			return nil, err
		}
		t.bases, t.hosts = append(t.bases, base), append(t.hosts, host)
	}
	t.base, t.host = t.bases[0], t.hosts[0]
	started = true
	return t, nil
}

// baseAndHost returns u with a trailing slash, and its host:port.
func baseAndHost(u string) (base, host string, err error) {
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return "", "", fmt.Errorf("bad server URL %q", u)
	}
	return u, pu.Host, nil
}

// close stops the started server (SIGTERM, then SIGKILL after 30 s), puts
// its exit code in res and reports it, and removes its data directory
// unless --keep-data. With --url it does nothing.
func (t *target) close(w io.Writer, res *collabResult) {
	if t.proc == nil {
		return
	}
	t.stopServers(w, res)
	t.removeData()
}

// stopServers stops the started nodes (in parallel), then the nats-server,
// and reports their exit codes; res (if not nil) gets the first nonzero
// one of the nodes, else 0.
func (t *target) stopServers(w io.Writer, res *collabResult) {
	codes := make([]int, len(t.nodes))
	errs := make([]error, len(t.nodes))
	var wg sync.WaitGroup
	for k, n := range t.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[k], errs[k] = n.stop(30 * time.Second) }()
	}
	wg.Wait()
	exit := 0
	for k, code := range codes {
		if errs[k] != nil {
			fmt.Fprintln(w, "  stopping collabd:", errs[k])
		}
		if len(codes) == 1 {
			fmt.Fprintf(w, "  collabd exit code after SIGTERM: %d\n", code)
		} else {
			fmt.Fprintf(w, "  collabd node%d exit code after SIGTERM: %d\n", k+1, code)
		}
		if exit == 0 {
			exit = code
		}
	}
	if res != nil {
		res.ExitCode = exit
	}
	if t.nats != nil {
		if err := t.nats.stop(30 * time.Second); err != nil {
			fmt.Fprintln(w, "  stopping nats-server:", err)
		}
	}
}

// pids are the started processes whose CPU the report sums: the nodes,
// then the nats-server.
func (t *target) pids() []int {
	var out []int
	for _, n := range t.nodes {
		out = append(out, n.PID)
	}
	if t.nats != nil {
		out = append(out, t.nats.PID)
	}
	return out
}

func (t *target) removeData() {
	if !t.keepData {
		os.RemoveAll(t.dataDir)
	}
}

// newEditors makes the run's shared state and c.docs documents of
// c.editors editors each, not connected yet. Ids carry a random run id, so
// that runs against one server never share a document; each editor's edits
// come from its own generator, seeded from seed and its place.
func newEditors(c collabConfig, seed uint64) (*collabRun, []*docRun, []*editor) {
	run := &collabRun{cfg: c, closed: c.rate == 0, failed: make(chan struct{})}
	runID := newRunID()
	docs := make([]*docRun, c.docs)
	var all []*editor
	for i := range docs {
		d := &docRun{id: fmt.Sprintf("load-%s-%d", runID, i), clients: map[string]int{}}
		for j := 0; j < c.editors; j++ {
			e := &editor{run: run, doc: d, idx: j, id: fmt.Sprintf("L%s-%d-%d", runID, i, j),
				rng: mrand.New(mrand.NewPCG(seed, uint64(i)<<20|uint64(j))), ack: newSampler(1<<16, seed+uint64(len(all)))}
			d.editors = append(d.editors, e)
			d.clients[e.id] = j
			all = append(all, e)
		}
		d.track = newE2ETracker(seed+uint64(i), func(client string) (int, bool) { k, ok := d.clients[client]; return k, ok })
		docs[i] = d
	}
	return run, docs, all
}

// printHeader prints the report's first lines: the run's shape, its
// command line with the seed to repeat it, and the server.
func printHeader(w io.Writer, c collabConfig, t *target, closed bool, seed uint64) {
	mode := "closed loop (one op in flight per editor)"
	if !closed {
		mode = fmt.Sprintf("open loop, %g edits/s per editor", c.rate)
	}
	fmt.Fprintf(w, "== collab: %d docs x %d editors, %s, %v measured after %v warm-up\n", c.docs, c.editors, mode, c.duration, c.warmup)
	fmt.Fprintf(w, "  command: collabd-load collab %s (seed %d)\n", strings.Join(c.args, " "), seed)
	switch {
	case t.nats != nil:
		fmt.Fprintf(w, "  nats-server: pid %d at %s, JetStream store %s (default sync_interval: fsync in the background every 2 min)\n", t.nats.PID, t.nats.URL, t.nats.storeDir)
		for k, n := range t.nodes {
			fmt.Fprintf(w, "  server node%d: %s --nats %s pid %d at %s (data %s)\n", k+1, c.collabd, t.nats.URL, n.PID, n.URL, n.dataDir)
		}
		fmt.Fprintf(w, "  editors: round-robin over the %d nodes\n", len(t.nodes))
	case t.proc != nil:
		fmt.Fprintf(w, "  server: %s pid %d at %s (data %s)\n", c.collabd, t.proc.PID, t.proc.URL, t.dataDir)
	default:
		fmt.Fprintf(w, "  server: %s (not started here: no CPU/RSS figures)\n", t.base)
	}
}

// disconnectAll closes every editor's connection, in parallel.
func disconnectAll(all []*editor) {
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() { defer wg.Done(); e.cl.Disconnect() }()
	}
	wg.Wait()
}

// watchConnections fails the run when an editor's connection ends before
// disconnectAll closes it.
func watchConnections(ctx context.Context, run *collabRun, all []*editor) {
	for _, e := range all {
		go func() {
			select {
			case <-e.cl.Done():
				if err := e.cl.Err(); !errors.Is(err, sioclient.ErrClosed) {
					run.fail(fmt.Errorf("editor %s lost its connection: %w", e.id, err))
				}
			case <-ctx.Done():
			}
		}()
	}
}

// loadGen makes the editors' edits: in the closed loop each editor's first
// one (every ack then brings the next), in the open loop one goroutine per
// editor editing at the --rate.
type loadGen struct {
	run   *collabRun
	stopc chan struct{} // closed by stop
	wg    sync.WaitGroup
}

func startLoad(ctx context.Context, run *collabRun, all []*editor) *loadGen {
	g := &loadGen{run: run, stopc: make(chan struct{})}
	if run.closed {
		for _, e := range all {
			e.mu.Lock()
			e.localEdit(time.Now())
			e.mu.Unlock()
		}
		return g
	}
	for _, e := range all {
		g.wg.Add(1)
		go func() { defer g.wg.Done(); e.openLoop(ctx, g.stopc) }()
	}
	return g
}

// stop ends the load (the acks of the closed loop make no new edits) and
// waits for the open loop's goroutines. runCollab calls it, once or twice.
func (g *loadGen) stop() {
	g.run.phase.Store(phaseStop)
	select {
	case <-g.stopc:
	default:
		close(g.stopc)
	}
	g.wg.Wait()
}

// sleep waits d, or less: until the run's first failure or the end of ctx,
// and returns that error.
func (r *collabRun) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.failed:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// window is what was sampled at the two ends of the measured window, for
// the figures computed after the drain.
type window struct {
	t0, t1  time.Time
	m0, m1  commitMetrics // the server's commit metrics
	profile <-chan error  // the server CPU profile's outcome; nil without --server-profile
	heapErr error         // the server heap profile's outcome
}

// measureWindow runs the measured window: it samples the counters of the
// server, the machine and this program, starts the profiles asked for,
// lets the load run c.duration in phaseMeasure (the editors count what is
// acknowledged meanwhile), ends the phase and samples again. The
// differences of CPU, system calls and context switches go into res.
func measureWindow(ctx context.Context, c collabConfig, run *collabRun, t *target, res *collabResult) (*window, error) {
	var s0 []serverSample
	if t.proc != nil {
		var err error
		if s0, err = sampleServers(t.pids()); err != nil {
			return nil, err
		}
	}
	win := &window{m0: scrapeCommits(ctx, t.bases), heapErr: errors.New("not asked for")}
	host0, hostErr := readHostCPU()
	client0 := selfCPU()
	if t.profileAddr != "" {
		win.profile = profileServerCPU(ctx, t.profileAddr, c.profile, c.duration)
	}
	stopSelfProfile, err := profileSelf(c.selfProfile)
	if err != nil {
		return nil, err
	}
	win.t0 = time.Now()
	run.phase.Store(phaseMeasure)
	err = run.sleep(ctx, c.duration)
	stopSelfProfile()
	if err != nil {
		return nil, err
	}
	run.phase.Store(phaseStop)
	win.t1 = time.Now()
	res.ClientCPU = selfCPU() - client0
	if host1, err := readHostCPU(); hostErr == nil && err == nil {
		res.HaveHostCPU = true
		res.HostBusy, res.HostIdle, res.HostSteal = hostShares(host0, host1)
	}
	if t.proc != nil {
		s1, err := sampleServers(t.pids())
		if err != nil {
			return nil, err
		}
		res.addServerWindow(sumSamples(s0), sumSamples(s1))
		if t.nats != nil {
			a, b := s0[len(s0)-1], s1[len(s1)-1]
			res.NATSCPU = b.user + b.sys - a.user - a.sys
		}
	}
	win.m1 = scrapeCommits(ctx, t.bases)
	if t.profileAddr != "" {
		win.heapErr = saveHeapProfile(ctx, t.profileAddr, c.profile+".heap")
	}
	return win, nil
}

// serverSample is the started server's counters at one moment (/proc).
type serverSample struct {
	user, sys     time.Duration
	reads, writes uint64
	ioErr         error // the system call counters were not readable
	switches      uint64
	switchErr     error // the context switches were not readable
}

// sampleServer reads the counters of process pid; only its CPU time must
// be readable.
func sampleServer(pid int) (serverSample, error) {
	var s serverSample
	var err error
	if s.user, s.sys, err = procCPUSplit(pid); err != nil {
		return s, err
	}
	s.reads, s.writes, s.ioErr = procSyscalls(pid)
	s.switches, s.switchErr = procContextSwitches(pid)
	return s, nil
}

// sampleServers samples every process of pids.
func sampleServers(pids []int) ([]serverSample, error) {
	out := make([]serverSample, len(pids))
	for i, pid := range pids {
		var err error
		if out[i], err = sampleServer(pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sumSamples adds the counters of several processes; a counter one of
// them could not read is unreadable in the sum.
func sumSamples(ss []serverSample) serverSample {
	var sum serverSample
	for _, s := range ss {
		sum.user += s.user
		sum.sys += s.sys
		sum.reads += s.reads
		sum.writes += s.writes
		sum.switches += s.switches
		sum.ioErr = cmp.Or(sum.ioErr, s.ioErr)
		sum.switchErr = cmp.Or(sum.switchErr, s.switchErr)
	}
	return sum
}

// addServerWindow puts what the server did between samples s0 and s1 into
// res: its CPU time, and the system calls and context switches when both
// samples have them (threads that ended take their switches with them: a
// count that went down is no figure).
func (res *collabResult) addServerWindow(s0, s1 serverSample) {
	res.ServerUser, res.ServerSys = s1.user-s0.user, s1.sys-s0.sys
	if s0.ioErr == nil && s1.ioErr == nil {
		res.HaveSyscalls, res.ServerReads, res.ServerWrites = true, s1.reads-s0.reads, s1.writes-s0.writes
	}
	if s0.switchErr == nil && s1.switchErr == nil && s1.switches >= s0.switches {
		res.HaveSwitches, res.ServerSwitches = true, s1.switches-s0.switches
	}
}

// profileServerCPU fetches a CPU profile of the next d from the server's
// pprof address into path, in the background; the channel gets the
// outcome.
func profileServerCPU(ctx context.Context, addr, path string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Seconds()))
		b, err := httpGet(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		done <- err
	}()
	return done
}

// saveHeapProfile writes the server's heap profile to path.
func saveHeapProfile(ctx context.Context, addr, path string) error {
	b, err := httpGet(ctx, "http://"+addr+"/debug/pprof/heap")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// profileSelf starts a CPU profile of this program into path (none for "")
// and returns the function that stops it.
func profileSelf(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// reportProfiles says where the server's profiles went (--server-profile),
// waiting for the CPU profile at most 10 s past the window's length.
func (win *window) reportProfiles(w io.Writer, c collabConfig) {
	if win.profile == nil {
		return
	}
	select {
	case err := <-win.profile:
		if err != nil {
			fmt.Fprintln(w, "  server CPU profile:", err)
		} else {
			fmt.Fprintf(w, "  server CPU profile of the window: %s (go tool pprof -top %s %s)\n", c.profile, c.collabd, c.profile)
		}
		if win.heapErr != nil {
			fmt.Fprintln(w, "  server heap profile:", win.heapErr)
		} else {
			fmt.Fprintf(w, "  server heap profile at the end of the window: %s.heap\n", c.profile)
		}
	case <-time.After(c.duration + 10*time.Second):
		fmt.Fprintln(w, "  server CPU profile: no answer")
	}
}

// collectResults fills res with the figures known once the editors have
// drained: the run's counters, the latency quantiles, the commits of the
// window, and the started server's CPU per op and memory.
func collectResults(res *collabResult, run *collabRun, docs []*docRun, win *window, t *target) {
	res.Submitted = run.submitted.Load()
	res.RateLimited = run.rateLimited.Load()
	res.Skipped = run.skipped.Load()
	var e2e, e2eEdit, acks []time.Duration
	ackByNode := make([][]time.Duration, len(run.byNode))
	for _, d := range docs {
		lat, latEdit, inc, unk := d.track.results()
		e2e = append(e2e, lat...)
		e2eEdit = append(e2eEdit, latEdit...)
		res.E2EIncomplete += inc
		res.E2EUnknown += unk
		for _, e := range d.editors {
			e.mu.Lock()
			acks = append(acks, e.ack.xs...)
			ackByNode[e.node] = append(ackByNode[e.node], e.ack.xs...)
			e.mu.Unlock()
		}
	}
	res.E2E, res.E2EFromEdit, res.Ack = summarize(e2e), summarize(e2eEdit), summarize(acks)
	if len(run.byNode) > 1 {
		for k := range run.byNode {
			res.CommittedByNode = append(res.CommittedByNode, run.byNode[k].Load())
			res.AckByNode = append(res.AckByNode, summarize(ackByNode[k]))
		}
	}
	if cw, ok := commitsBetween(win.m0, win.m1); ok {
		res.HaveCommits, res.Commits = true, cw
		if cw.MeanCommit > 0 {
			res.P99InCommits = float64(res.E2E.P99) / float64(cw.MeanCommit)
		}
	}
	if t.proc != nil {
		if res.Committed > 0 {
			res.CPUPerOp = (res.ServerUser + res.ServerSys) / time.Duration(res.Committed)
		}
		for _, n := range t.nodes {
			if rss, hwm, err := procMem(n.PID); err == nil {
				res.EndRSS, res.PeakRSS = res.EndRSS+rss, res.PeakRSS+hwm
			}
			if anon, file, err := procRSSSplit(n.PID); err == nil {
				res.EndAnon, res.EndFile = res.EndAnon+anon, res.EndFile+file
			}
		}
		if t.nats != nil {
			res.NATSEndRSS, res.NATSPeakRSS, _ = procMem(t.nats.PID)
		}
	}
}

// writeReport prints the figures of res, from the throughput to the
// machine's CPU shares.
func writeReport(w io.Writer, c collabConfig, closed bool, res *collabResult, loadStart string) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(w, "  committed ops: %d in %v = %.0f ops/s (submitted in the whole run %d, rate_limited retries %d, skipped edits %d)\n",
		res.Committed, res.Window.Round(time.Millisecond), res.OpsPerSec, res.Submitted, res.RateLimited, res.Skipped)
	if res.RateLimited > 0 {
		fmt.Fprintln(w, "  NOTE: the server's per-socket rate limit capped the load (for capacity runs start it with --server-flags \"--ops-per-second 1000000\")")
	}
	if c.editors > 1 {
		fmt.Fprintf(w, "  end-to-end (doc:op emitted until applied by all %d other editors): %v; %d never completed, %d unmatched broadcasts\n",
			c.editors-1, res.E2E, res.E2EIncomplete, res.E2EUnknown)
		if !closed {
			fmt.Fprintf(w, "  end-to-end from the first local edit an op holds (includes waiting behind the op in flight): %v\n", res.E2EFromEdit)
		}
	}
	fmt.Fprintf(w, "  author ack latency: %v\n", res.Ack)
	for k, n := range res.CommittedByNode {
		fmt.Fprintf(w, "    editors on node%d: %d committed ops in the window (%.0f%%), ack latency %v\n",
			k+1, n, 100*float64(n)/float64(max(1, res.Committed)), res.AckByNode[k])
	}
	if res.HaveServer {
		if res.HaveNATS {
			perOp := func(d time.Duration) float64 { return us(d) / float64(max(1, res.Committed)) }
			total := res.ServerUser + res.ServerSys
			fmt.Fprintf(w, "  server CPU (%d collabd nodes + nats-server): %v over the window (user %v, system %v) = %.1f µs per committed op: nodes %.1f, nats-server %.1f\n",
				res.Nodes, total.Round(time.Millisecond), res.ServerUser.Round(time.Millisecond), res.ServerSys.Round(time.Millisecond),
				us(res.CPUPerOp), perOp(total-res.NATSCPU), perOp(res.NATSCPU))
		} else {
			fmt.Fprintf(w, "  server CPU: %v over the window (user %v, system %v) = %.1f µs per committed op\n",
				(res.ServerUser + res.ServerSys).Round(time.Millisecond), res.ServerUser.Round(time.Millisecond), res.ServerSys.Round(time.Millisecond), us(res.CPUPerOp))
		}
		if res.HaveSyscalls && res.Committed > 0 {
			fmt.Fprintf(w, "  server system calls per committed op (/proc/PID/io): %.2f read-type, %.2f write-type (fsyncs not counted)\n",
				float64(res.ServerReads)/float64(res.Committed), float64(res.ServerWrites)/float64(res.Committed))
		}
		if res.HaveSwitches && res.Committed > 0 {
			fmt.Fprintf(w, "  server context switches per committed op (/proc/PID/task/*/status): %.2f\n",
				float64(res.ServerSwitches)/float64(res.Committed))
		}
		fileBacked := "file-backed incl. the bbolt mmap"
		if res.HaveNATS {
			fileBacked = "file-backed"
		}
		fmt.Fprintf(w, "  server RSS: peak (VmHWM) %.1f MiB, at the end %.1f MiB (anonymous %.1f MiB, %s %.1f MiB)",
			float64(res.PeakRSS)/mib, float64(res.EndRSS)/mib, float64(res.EndAnon)/mib, fileBacked, float64(res.EndFile)/mib)
		if res.Nodes > 1 {
			fmt.Fprintf(w, ", summed over the %d nodes", res.Nodes)
		}
		fmt.Fprintln(w)
		if res.HaveNATS {
			fmt.Fprintf(w, "  nats-server RSS: peak %.1f MiB, at the end %.1f MiB\n", float64(res.NATSPeakRSS)/mib, float64(res.NATSEndRSS)/mib)
		}
	}
	if res.HaveCommits {
		perCommit := 0.0
		if res.Commits.Commits > 0 {
			perCommit = float64(res.Committed) / res.Commits.Commits
		}
		bound := func(d time.Duration) string {
			switch {
			case d == 0:
				return "?"
			case d < 0:
				return "> largest bucket"
			}
			return "<= " + d.String()
		}
		fmt.Fprintf(w, "  commits (/metrics): %.0f in the window, %.1f ops per commit, commit time mean %v, p50 %s, p99 %s (histogram buckets)",
			res.Commits.Commits, perCommit, res.Commits.MeanCommit.Round(time.Microsecond), bound(res.Commits.P50Commit), bound(res.Commits.P99Commit))
		if res.P99InCommits > 0 {
			fmt.Fprintf(w, "; p99 end-to-end = %.2f mean commit times", res.P99InCommits)
		}
		fmt.Fprintf(w, "\n  server counters over the window: %.0f ops committed, %.0f broadcasts dropped or slow clients closed\n", res.Commits.Ops, res.Commits.Dropped)
		if res.HaveNATS || len(res.Commits.Cluster) > 0 {
			writeClusterCounters(w, res)
		}
	} else {
		fmt.Fprintln(w, "  commits: /metrics has no collabd_commit_seconds / collabd_commits_total")
	}
	fmt.Fprintf(w, "  load program CPU over the window: %v (%.1f µs per committed op)\n", res.ClientCPU.Round(time.Millisecond), us(res.ClientCPU)/float64(max(1, res.Committed)))
	fmt.Fprintf(w, "  load average (1/5/15 min): %s at the start, %s at the end of the window\n", loadStart, loadAvg())
	if res.HaveHostCPU {
		fmt.Fprintf(w, "  machine CPU over the window (/proc/stat, all CPUs): %.0f%% busy, %.0f%% idle, %.0f%% stolen by the hypervisor\n",
			100*res.HostBusy, 100*res.HostIdle, 100*res.HostSteal)
	}
}

// connectAndJoin dials every editor and joins its document (a few at a
// time), editor i on hosts[i % len(hosts)].
func connectAndJoin(ctx context.Context, hosts []string, all []*editor) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(all))
	sem := make(chan struct{}, 32)
	for i, e := range all {
		host := hosts[i%len(hosts)]
		e.node = i % len(hosts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			cl, err := sioclient.Dial(ctx, sioclient.Config{Addr: host, OnEvent: e.onEvent})
			if err != nil {
				errc <- fmt.Errorf("editor %s: %w", e.id, err)
				return
			}
			e.cl = cl
			join := map[string]any{"doc": e.doc.id, "client": e.id, "user": map[string]string{"name": "load " + e.id}}
			raw, err := cl.Call(30*time.Second, "doc:join", join)
			var a ackMsg
			if err == nil {
				err = firstArg(raw, &a)
			}
			if err == nil {
				err = a.err()
			}
			if err != nil {
				errc <- fmt.Errorf("editor %s: doc:join: %w", e.id, err)
				return
			}
			e.mu.Lock()
			e.st = newOTClient(a.Rev, a.Text)
			e.mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		for _, e := range all {
			if e.cl != nil {
				e.cl.Close()
			}
		}
		return fmt.Errorf("%d of %d editors failed to join; first: %w", len(errs), len(all), errs[0])
	}
	// Every editor of a document joined the same revision (nobody edits yet).
	return nil
}

// drain waits until every editor has nothing in flight and is at its
// document's head revision.
func drain(ctx context.Context, run *collabRun, docs []*docRun, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		busy := ""
		for _, d := range docs {
			var head uint64
			revs := make([]uint64, len(d.editors))
			for i, e := range d.editors {
				idle, rev := e.settled()
				if !idle && busy == "" {
					busy = fmt.Sprintf("editor %s has an op in flight at revision %d", e.id, rev)
				}
				revs[i], head = rev, max(head, rev)
			}
			for i, r := range revs {
				if r != head && busy == "" {
					busy = fmt.Sprintf("editor %s at revision %d, its document at %d", d.editors[i].id, r, head)
				}
			}
		}
		if busy == "" {
			return nil
		}
		if err := run.failure(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not drained after %v: %s", timeout, busy)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// serverDoc is the answer of GET /api/docs/{id}.
type serverDoc struct {
	Rev  uint64 `json:"rev"`
	Text string `json:"text"`
}

func getDoc(ctx context.Context, base, id string) (serverDoc, error) {
	var doc serverDoc
	b, err := httpGet(ctx, base+"api/docs/"+url.PathEscape(id))
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("GET /api/docs/%s: %w", id, err)
	}
	return doc, nil
}

// checkConvergence compares every editor's text and revision with
// GET /api/docs/{id} on the first node, and that with the answer of every
// other node (which may lag a moment behind: each is asked again for at
// most 5 s).
func checkConvergence(ctx context.Context, w io.Writer, bases []string, docs []*docRun) error {
	bad, badNodes := 0, 0
	var revs, size int64
	for _, d := range docs {
		doc, err := getDoc(ctx, bases[0], d.id)
		if err != nil {
			return fmt.Errorf("convergence check: %w", err)
		}
		revs += int64(doc.Rev)
		size += int64(len(doc.Text))
		for _, e := range d.editors {
			e.mu.Lock()
			rev, text := e.st.rev, e.st.text.String()
			e.mu.Unlock()
			if rev != doc.Rev || text != doc.Text {
				bad++
				if bad <= 5 {
					fmt.Fprintf(w, "  DIVERGED: editor %s of %s at revision %d (%d bytes), server at %d (%d bytes), first difference at byte %d\n",
						e.id, d.id, rev, len(text), doc.Rev, len(doc.Text), firstDiff(text, doc.Text))
				}
			}
		}
		for k, base := range bases[1:] {
			deadline := time.Now().Add(5 * time.Second)
			for {
				other, err := getDoc(ctx, base, d.id)
				if err != nil {
					return fmt.Errorf("convergence check: node%d: %w", k+2, err)
				}
				if other == doc {
					break
				}
				if time.Now().After(deadline) {
					badNodes++
					if badNodes <= 5 {
						fmt.Fprintf(w, "  DIVERGED: node%d has %s at revision %d (%d bytes), node1 at %d (%d bytes)\n",
							k+2, d.id, other.Rev, len(other.Text), doc.Rev, len(doc.Text))
					}
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	if bad > 0 || badNodes > 0 {
		return fmt.Errorf("%w: %d editors, %d node answers", errDiverged, bad, badNodes)
	}
	nodes := ""
	if len(bases) > 1 {
		nodes = fmt.Sprintf(" on all %d nodes", len(bases))
	}
	fmt.Fprintf(w, "  convergence: OK, all %d editors of %d documents equal GET /api/docs/{id}%s (%d revisions, %d bytes of text in total)\n",
		len(docs)*len(docs[0].editors), len(docs), nodes, revs, size)
	return nil
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
