package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/natstest"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/webhook"
)

// TestNATSFlags: the cluster flags and their environment variables parse
// into serveConfig, and contradictory or broken settings are refused
// before anything starts.
func TestNATSFlags(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(serveConfig) bool
		wantErr string
	}{
		{name: "default is single node", want: func(c serveConfig) bool {
			return !c.NATS.enabled() && c.NATSReplicas == 1 && c.NodeName == "" && c.NATSStartupTimeout == 30*time.Second
		}},
		{name: "flags", args: []string{"--nats", "nats://a:4222, nats://b:4222", "--nats-replicas", "3", "--node-name", "n1", "--nats-creds", creds},
			want: func(c serveConfig) bool {
				return c.NATS.enabled() && c.NATS.URLs == "nats://a:4222, nats://b:4222" && c.NATSReplicas == 3 && c.NodeName == "n1" && c.NATS.Creds == creds
			}},
		{name: "environment", env: map[string]string{"COLLABD_NATS": "nats://env:4222", "COLLABD_NATS_REPLICAS": "3", "COLLABD_NODE_NAME": "envnode",
			"COLLABD_NATS_CREDS": creds, "COLLABD_NATS_STARTUP_TIMEOUT": "5s"},
			want: func(c serveConfig) bool {
				return c.NATS.URLs == "nats://env:4222" && c.NATSReplicas == 3 && c.NodeName == "envnode" && c.NATS.Creds == creds && c.NATSStartupTimeout == 5*time.Second
			}},
		{name: "a flag wins over the environment", args: []string{"--nats", "nats://flag:4222"}, env: map[string]string{"COLLABD_NATS": "nats://env:4222"},
			want: func(c serveConfig) bool { return c.NATS.URLs == "nats://flag:4222" }},
		{name: "cert without key", args: []string{"--nats", "nats://a:4222", "--nats-cert", creds}, wantErr: "--nats-cert and --nats-key"},
		{name: "creds without nats", args: []string{"--nats-creds", creds}, wantErr: "need --nats"},
		{name: "missing creds file", args: []string{"--nats", "nats://a:4222", "--nats-creds", creds + ".missing"}, wantErr: "--nats-creds"},
		{name: "zero replicas", args: []string{"--nats", "nats://a:4222", "--nats-replicas", "0"}, wantErr: "--nats-replicas"},
		{name: "bad replicas in the environment", env: map[string]string{"COLLABD_NATS_REPLICAS": "three"}, wantErr: "COLLABD_NATS_REPLICAS"},
		{name: "retention in cluster mode", args: []string{"--nats", "nats://a:4222", "--retain-days", "3", "--retain-revisions", "1000"},
			want: func(c serveConfig) bool { return c.NATS.enabled() && c.RetainDays == 3 && c.RetainRevisions == 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c serveConfig
			fs := newFlagSet("serve", io.Discard, "")
			serveFlags(fs, &c)
			_, err := parseFlags(fs, tc.args, nil, func(k string) string { return tc.env[k] })
			if err == nil {
				err = c.validate()
			}
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !tc.want(c):
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":        "nats://127.0.0.1:4222",
		"127.0.0.1:4222":               "nats://127.0.0.1:4222",
		"nats://user:secret@host:4222": "nats://***@host:4222",
		"tls://s3cr3tt0ken@host:4222":  "tls://***@host:4222",
		"user:secret@host:4222":        "nats://***@host:4222",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	c := natsConfig{URLs: "nats://u:pw@a:4222, b:4222"}
	if got := c.servers(); got != "nats://***@a:4222,nats://b:4222" || strings.Contains(got, "pw") {
		t.Errorf("servers() = %q", got)
	}
}

// natsAt starts an embedded JetStream nats-server on port (-1: any) storing
// in dir, and shuts it down at cleanup unless the test did.
func natsAt(tb testing.TB, port int, dir string) *natsserver.Server {
	tb.Helper()
	return runNATSServer(tb, &natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, SyncAlways: true})
}

func runNATSServer(tb testing.TB, opts *natsserver.Options) *natsserver.Server {
	tb.Helper()
	return natstest.Run(tb, opts)
}

// waitStatus polls url until it answers want (bounded: 40 s), and
// returns the last body.
func waitStatus(tb testing.TB, url string, want int) string {
	tb.Helper()
	var code int
	var body string
	for i := 0; i < 400; i++ {
		code, body, _ = httpDo(tb, "GET", url, "")
		if code == want {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("GET %s: %d %q, want %d", url, code, body, want)
	return ""
}

// TestClusterMode: with --nats, documents live in JetStream: a socket op
// is acknowledged and readable over HTTP and with `collabd cat --nats`,
// /readyz follows the NATS connection (503 while it is down, 200 once it
// is back), and the data directory holds no bbolt file.
func TestClusterMode(t *testing.T) {
	natsDir := t.TempDir()
	ns := natsAt(t, -1, natsDir)
	natsURL := ns.ClientURL()
	p := start(t, "", nil, "--nats", natsURL, "--node-name", "node-a")

	c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ack := call(t, c, "doc:join", map[string]any{"doc": "clustered", "client": "cli-1"}); ack["ok"] != true || ack["rev"] != float64(0) {
		t.Fatalf("join ack %v", ack)
	}
	if ack := call(t, c, "doc:op", map[string]any{"doc": "clustered", "client": "cli-1", "seq": 1, "rev": 0, "op": []any{"hello nats"}}); ack["ok"] != true || ack["rev"] != float64(1) {
		t.Fatalf("op ack %v", ack)
	}
	if rev, text := getDoc(t, p, "clustered"); rev != 1 || text != "hello nats" {
		t.Fatalf("GET: rev %d text %q", rev, text)
	}
	if _, err := os.Stat(filepath.Join(p.data, dbFile)); !os.IsNotExist(err) {
		t.Fatalf("cluster mode opened %s: %v", dbFile, err)
	}
	if body := waitStatus(t, p.url+"readyz", http.StatusOK); body != "ready\n" {
		t.Fatalf("readyz %q", body)
	}
	_, metrics, _ := httpDo(t, "GET", p.url+"metrics", "")
	if v := metricValue(t, metrics, "collabd_nats_connected"); v != 1 {
		t.Fatalf("collabd_nats_connected %v", v)
	}

	// The client subcommands read JetStream.
	stdout, stderr, code := collabd(t, nil, "cat", "clustered", "--nats", natsURL)
	if code != 0 || stdout != "hello nats" {
		t.Fatalf("cat --nats: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = collabd(t, []string{"COLLABD_NATS=" + natsURL}, "history", "clustered", "--json")
	if code != 0 || !strings.Contains(stdout, `"rev":1`) {
		t.Fatalf("history with COLLABD_NATS: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	putDoc(t, p, "scratch", "to be purged", 0)
	stdout, stderr, code = collabd(t, nil, "purge", "scratch", "--nats", natsURL)
	if code != 0 || !strings.Contains(stdout, "purged scratch") {
		t.Fatalf("purge --nats: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if stdout, _, code := collabd(t, nil, "cat", "scratch", "--nats", natsURL, "--json"); code != 0 || !strings.Contains(stdout, `"rev":0`) {
		t.Fatalf("cat --nats of a purged document: exit %d, stdout %q", code, stdout)
	}
	if _, stderr, code := collabd(t, nil, "purge", "scratch", "--nats", natsURL); code == 0 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("second purge --nats: exit %d, stderr %q", code, stderr)
	}
	for _, cmd := range [][]string{{"backup", filepath.Join(t.TempDir(), "b.db")}, {"compact"}} {
		_, stderr, code := collabd(t, nil, append(cmd, "--nats", natsURL)...)
		if code == 0 || !strings.Contains(stderr, "does not apply with --nats") {
			t.Fatalf("%v --nats: exit %d, stderr %q", cmd, code, stderr)
		}
	}

	// NATS goes away: not ready, with the reason; healthy still.
	addr := ns.Addr().String()
	var natsPort int
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &natsPort); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	if body := waitStatus(t, p.url+"readyz", http.StatusServiceUnavailable); !strings.Contains(body, "NATS connection") {
		t.Fatalf("readyz while NATS is down: %q", body)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz while NATS is down: %d", code)
	}
	_, metrics, _ = httpDo(t, "GET", p.url+"metrics", "")
	if v := metricValue(t, metrics, "collabd_nats_connected"); v != 0 {
		t.Fatalf("collabd_nats_connected %v while NATS is down", v)
	}
	t.Run("op while NATS is down", func(t *testing.T) {
		raw, err := c.Call(90*time.Second, "doc:op", map[string]any{"doc": "clustered", "client": "cli-1", "seq": 2, "rev": 1, "op": []any{10, "!"}})
		if err != nil {
			t.Fatal(err)
		}
		var args []map[string]any
		if err := json.Unmarshal(raw, &args); err != nil || len(args) == 0 {
			t.Fatalf("ack %s: %v", raw, err)
		}
		if code := errCode(args[0]); code != "unavailable" {
			t.Fatalf("op while NATS is down: ack %v, want error unavailable", args[0])
		}
	})

	// NATS comes back on the same port and store: ready again, and the
	// document is still there.
	natsAt(t, natsPort, natsDir)
	waitStatus(t, p.url+"readyz", http.StatusOK)
	_, metrics, _ = httpDo(t, "GET", p.url+"metrics", "")
	if v := metricValue(t, metrics, "collabd_nats_reconnects_total"); v < 1 {
		t.Fatalf("collabd_nats_reconnects_total %v after a reconnection", v)
	}
	if rev, text := getDoc(t, p, "clustered"); rev < 1 || !strings.HasPrefix(text, "hello nats") {
		t.Fatalf("GET after NATS came back: rev %d text %q", rev, text)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestClusterNATSUnreachable: a node whose NATS does not come up within
// --nats-startup-timeout exits with a message naming the URL (without its
// password).
func TestClusterNATSUnreachable(t *testing.T) {
	_, stderr, code := collabd(t, nil, "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--nats", "nats://user:pw@127.0.0.1:1", "--nats-startup-timeout", "1s")
	if code == 0 || !strings.Contains(stderr, "NATS unreachable at nats://***@127.0.0.1:1") || strings.Contains(stderr, "pw@") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestClusterTwoNodes: two nodes on one NATS share the documents and run
// the sockets' NATS adapter: a document written through one node is read
// through the other, each node announces itself on the adapter's subject,
// and a member on one node sees the members, presence and ops of the other
// node, and their leaving when that node stops.
func TestClusterTwoNodes(t *testing.T) {
	ns := natsAt(t, -1, t.TempDir())
	natsURL := ns.ClientURL()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The adapter's subject of namespace "/" (base64url "Lw"): every node
	// says hello there when it starts (docs/sockets.md).
	hellos, err := nc.SubscribeSync(sockets.DefaultNATSPrefix + ".Lw")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a := start(t, "", nil, "--nats", natsURL, "--node-name", "a")
	b := start(t, "", []string{"COLLABD_NATS=" + natsURL, "COLLABD_NODE_NAME=b"})
	for i := range 2 {
		if _, err := hellos.NextMsg(20 * time.Second); err != nil {
			t.Fatalf("adapter message %d of 2 on %s: %v", i+1, hellos.Subject, err)
		}
	}
	if !strings.Contains(b.logs(), `"node":"b"`) {
		t.Fatalf("COLLABD_NODE_NAME not in b's logs:\n%s", b.logs())
	}

	putDoc(t, a, "written-on-a", "hello from a", 0)
	if rev, text := getDoc(t, b, "written-on-a"); rev != 1 || text != "hello from a" {
		t.Fatalf("GET through b: rev %d text %q", rev, text)
	}

	evs := newEvents()
	cb, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: b.addr, OnEvent: evs.on})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if ack := call(t, cb, "doc:join", map[string]any{"doc": "shared", "client": "on-b"}); ack["ok"] != true {
		t.Fatalf("join on b: %v", ack)
	}
	ca, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: a.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if ack := call(t, ca, "doc:join", map[string]any{"doc": "shared", "client": "on-a"}); ack["ok"] != true {
		t.Fatalf("join on a: %v", ack)
	}
	if ack := call(t, ca, "doc:presence", map[string]any{"doc": "shared", "rev": 0, "sel": []any{}}); ack["ok"] != true {
		t.Fatalf("presence on a: %v", ack)
	}
	if ack := call(t, ca, "doc:op", map[string]any{"doc": "shared", "client": "on-a", "seq": 1, "rev": 0, "op": []any{"from a"}}); ack["ok"] != true {
		t.Fatalf("op on a: %v", ack)
	}
	// The member on b hears of a's member (presence bus), its presence
	// and its op (the store's feed), in whatever order they cross.
	got := map[string]string{}
	deadline := time.After(20 * time.Second)
	for got["doc:member"] == "" || got["doc:presence"] == "" || got["doc:op"] == "" {
		select {
		case ev := <-evs.ch:
			if got[ev[0]] == "" {
				got[ev[0]] = ev[1]
			}
		case <-deadline:
			t.Fatalf("member on b got only %v", got)
		}
	}
	var member struct {
		Doc, Client string
		Joined      bool
	}
	if err := json.Unmarshal([]byte(got["doc:member"]), &member); err != nil || member != (struct {
		Doc, Client string
		Joined      bool
	}{"shared", "on-a", true}) {
		t.Fatalf("doc:member on b: %s", got["doc:member"])
	}
	var presence struct{ Doc, Client string }
	if err := json.Unmarshal([]byte(got["doc:presence"]), &presence); err != nil || presence.Doc != "shared" || presence.Client != "on-a" {
		t.Fatalf("doc:presence on b: %s", got["doc:presence"])
	}
	var rec wireRec
	if err := json.Unmarshal([]byte(got["doc:op"]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Doc != "shared" || rec.Rev != 1 || rec.Client != "on-a" || string(rec.Op) != `["from a"]` {
		t.Fatalf("doc:op on b: %+v", rec)
	}

	// a stops cleanly: b's member hears that a's member left.
	a.stop(t, syscall.SIGTERM)
	for {
		select {
		case ev := <-evs.ch:
			if ev[0] == "doc:member" && strings.Contains(ev[1], `"joined":false`) && strings.Contains(ev[1], `"on-a"`) {
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no doc:member joined:false on b after a stopped")
		}
	}
}

func TestPeerNodeID(t *testing.T) {
	long := strings.Repeat("h", 100)
	for in, want := range map[string]string{
		"host:8080":      "host-8080",
		"vm-1.example_9": "vm-1-example_9",
		"":               "collabd",
		long:             long[:session.MaxNodeIDBytes-len("-xxxxxxxx")],
	} {
		got := peerNodeID(in)
		if got != want || !session.ValidNodeID(got+"-12345678") {
			t.Errorf("peerNodeID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClusterPasswordInURL: a user and password in the NATS URL are used
// and never logged; a wrong password ends the start with the server's
// answer once the startup window is over.
func TestClusterPasswordInURL(t *testing.T) {
	const password = "s3cret-pw-in-url"
	ns := runNATSServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Username: "collabd", Password: password})
	hostPort := strings.TrimPrefix(ns.ClientURL(), "nats://")
	p := start(t, "", nil, "--nats", "nats://collabd:"+password+"@"+hostPort)
	putDoc(t, p, "authed", "stored with a password", 0)
	if body := waitStatus(t, p.url+"readyz", http.StatusOK); body != "ready\n" {
		t.Fatalf("readyz %q", body)
	}
	p.stop(t, syscall.SIGTERM)
	if strings.Contains(p.logs(), password) {
		t.Fatalf("the password is in the logs:\n%s", p.logs())
	}
	if strings.Contains(p.logs(), "NATS disconnected") {
		t.Fatalf("a clean stop logged a disconnection:\n%s", p.logs())
	}

	_, stderr, code := collabd(t, nil, "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--nats", "nats://collabd:wrong-"+password+"@"+hostPort, "--nats-startup-timeout", "2s")
	if code == 0 || !strings.Contains(stderr, "NATS unreachable at nats://***@"+hostPort) || !strings.Contains(strings.ToLower(stderr), "authorization") || strings.Contains(stderr, password) {
		t.Fatalf("wrong password: exit %d, stderr %q", code, stderr)
	}
}

// TestClusterWebhooks: with --webhook-url on two nodes, each change is
// reported once, by the node that committed it, not by the node that
// followed it; the outbox is a file of the node's own.
func TestClusterWebhooks(t *testing.T) {
	const secret = "cluster-webhook-secret"
	var mu sync.Mutex
	var evs []webhook.Event
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(400)
			return
		}
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	}))
	defer rcv.Close()
	waitEvents := func(n int) []webhook.Event {
		t.Helper()
		for range 500 {
			mu.Lock()
			got := slices.Clone(evs)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("fewer than %d webhook events: %+v", n, evs)
		return nil
	}
	ns := natsAt(t, -1, t.TempDir())
	env := []string{"COLLABD_NATS=" + ns.ClientURL(), "COLLABD_WEBHOOK_URL=" + rcv.URL, "COLLABD_WEBHOOK_SECRET=" + secret, "COLLABD_WEBHOOK_DEBOUNCE=100ms"}
	a := start(t, "", env, "--node-name", "a")
	b := start(t, "", env, "--node-name", "b")
	if _, err := os.Stat(filepath.Join(a.data, outboxFile)); err != nil {
		t.Fatalf("no outbox file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.data, dbFile)); !os.IsNotExist(err) {
		t.Fatalf("cluster mode opened %s: %v", dbFile, err)
	}
	putDoc(t, a, "hooked", "one", 0)
	if got := waitEvents(2); got[0].Type != webhook.TypeCreated || got[1].Type != webhook.TypeChanged || got[1].ToRev != 1 {
		t.Fatalf("events of a's PUT: %+v", got)
	}
	// b follows the append (its GET shows it) but does not report it.
	if rev, text := getDoc(t, b, "hooked"); rev != 1 || text != "one" {
		t.Fatalf("GET through b: rev %d text %q", rev, text)
	}
	putDoc(t, b, "hooked", "one two", 1)
	got := waitEvents(3)
	var changed []uint64
	for _, ev := range got {
		if ev.Type == webhook.TypeChanged {
			changed = append(changed, ev.ToRev)
		}
	}
	if got[0].Type != webhook.TypeCreated || !slices.Equal(changed, []uint64{1, 2}) || len(got) != 3 {
		t.Fatalf("events %+v", got)
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate (PEM files in dir) and returns the server's TLS config,
// which requires a client certificate signed by the CA.
func testPKI(tb testing.TB, dir string) (caFile, certFile, keyFile string, srv *tls.Config) {
	tb.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			tb.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		tb.Fatal(err)
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	certFile = write("client.pem", "CERTIFICATE", cliDER)
	keyFile = write("client-key.pem", "EC PRIVATE KEY", cliKeyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
		ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}
	return caFile, certFile, keyFile, srv
}

// TestClusterTLS: --nats-ca and --nats-cert/--nats-key reach a NATS server
// that requires TLS with client certificates; without the client
// certificate the start fails.
func TestClusterTLS(t *testing.T) {
	caFile, certFile, keyFile, tlsConf := testPKI(t, t.TempDir())
	ns := runNATSServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, TLS: true, TLSVerify: true, TLSConfig: tlsConf, TLSTimeout: 5})
	url := ns.ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("server URL %s", url)
	}
	p := start(t, "", []string{"COLLABD_NATS_CA=" + caFile}, "--nats", url, "--nats-cert", certFile, "--nats-key", keyFile)
	putDoc(t, p, "over-tls", "encrypted", 0)
	if rev, text := getDoc(t, p, "over-tls"); rev != 1 || text != "encrypted" {
		t.Fatalf("GET: rev %d text %q", rev, text)
	}
	if stdout, stderr, code := collabd(t, nil, "cat", "over-tls", "--nats", url, "--nats-ca", caFile, "--nats-cert", certFile, "--nats-key", keyFile); code != 0 || stdout != "encrypted" {
		t.Fatalf("cat over TLS: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := collabd(t, nil, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--nats", url, "--nats-ca", caFile, "--nats-startup-timeout", "2s"); code == 0 || !strings.Contains(stderr, "NATS unreachable at "+url) {
		t.Fatalf("without a client certificate: exit %d, stderr %q", code, stderr)
	}
}

// TestClusterRevocations: a token revoked through one node's admin
// endpoint is refused by every node, on open connections and over HTTP,
// also by a node started later with an empty data directory; a node
// joining with revocations of its own (its file from before the cluster)
// adds them; while NATS is down a revocation is answered unavailable (in
// effect on that node only), and sent again once NATS is back it reaches
// the others.
func TestClusterRevocations(t *testing.T) {
	const secret, adminSecret = "cluster-revocations-secret-0123", "cluster-admin-secret-0123456789"
	natsDir := t.TempDir()
	ns := natsAt(t, -1, natsDir)
	natsURL := ns.ClientURL()
	args := []string{"--nats", natsURL, "--auth-secret", secret, "--admin-secret", adminSecret}
	authority, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(user, jti string) string {
		tok, err := authority.Mint(auth.Claims{User: user, ID: jti, Edit: []string{"*"}, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := []string{"Authorization", "Bearer " + adminSecret}
	revoke := func(p *proc, body string) (int, string) {
		code, resp, _ := httpDo(t, "POST", p.url+"admin/revocations", body, admin...)
		return code, resp
	}
	// refused waits until p answers 401 to tok over HTTP.
	refused := func(p *proc, tok, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, _, _ := httpDo(t, "GET", p.url+"api/docs/revoked-doc", "", "Authorization", "Bearer "+tok)
			if code == http.StatusUnauthorized {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET with the token answered %d, want 401", what, code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	accepted := func(p *proc, tok, what string) {
		t.Helper()
		if code, body, _ := httpDo(t, "GET", p.url+"api/docs/revoked-doc", "", "Authorization", "Bearer "+tok); code != http.StatusOK && code != http.StatusNotFound {
			t.Fatalf("%s: GET with the token answered %d %s", what, code, body)
		}
	}

	// Node c ran alone before and revoked "old-1"; it joins the cluster.
	cData := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(cData, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cData, revocationsFile), []byte(`{"jti":["old-1"],"not_before":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a := start(t, "", nil, append(args, "--node-name", "a")...)
	b := start(t, "", nil, append(args, "--node-name", "b")...)
	old := mint("olga", "old-1")
	accepted(a, old, "a before c joined")
	c := start(t, cData, nil, append(args, "--node-name", "c")...)
	refused(a, old, "a after c joined with old-1 in its file")

	// Bob edits through b; the admin revokes his token through a.
	bobTok := mint("bob", "bob-1")
	ev := newEvents()
	bob, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: b.addr, Auth: map[string]any{"token": bobTok}, OnEvent: ev.on})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if ack := call(t, bob, "doc:join", map[string]any{"doc": "revoked-doc", "client": "bob-c"}); ack["ok"] != true {
		t.Fatalf("join on b: %v", ack)
	}
	if code, body := revoke(a, `{"jti":["bob-1"]}`); code != 200 {
		t.Fatalf("revoke through a: %d %s", code, body)
	}
	if got := ev.wait(t, "auth:expired", 10*time.Second); !strings.Contains(got, `"reason":"revoked"`) {
		t.Fatalf("bob's socket on b: auth:expired %s", got)
	}
	refused(b, bobTok, "b after the revocation through a")
	refused(c, bobTok, "c after the revocation through a")

	// A user's not-before time, set through b, reaches a.
	annOld := mint("ann", "ann-1")
	accepted(a, annOld, "ann's token before")
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds
	if code, body := revoke(b, `{"users":["ann"]}`); code != 200 {
		t.Fatalf("revoke ann through b: %d %s", code, body)
	}
	refused(a, annOld, "a after ann's not-before through b")
	time.Sleep(1100 * time.Millisecond)
	accepted(a, mint("ann", "ann-2"), "ann's token issued after the not-before")
	_, list, _ := httpDo(t, "GET", c.url+"admin/revocations", "", admin...)
	for _, want := range []string{`"bob-1"`, `"old-1"`, `"ann"`} {
		if !strings.Contains(list, want) {
			t.Fatalf("GET /admin/revocations on c lacks %s: %s", want, list)
		}
	}

	// A node started later with nothing in its data directory.
	d := start(t, "", nil, append(args, "--node-name", "d")...)
	refused(d, bobTok, "a new node")
	refused(d, annOld, "a new node, ann's old token")

	// NATS down: the revocation holds on a only, and says so.
	addr := ns.Addr().String()
	natsPort, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	waitStatus(t, a.url+"readyz", http.StatusServiceUnavailable)
	carol := mint("carol", "carol-1")
	code, body := revoke(a, `{"jti":["carol-1"]}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "this node only") {
		t.Fatalf("revoke while NATS is down: %d %s", code, body)
	}
	refused(a, carol, "a, where the revocation holds")
	natsAt(t, natsPort, natsDir)
	for _, p := range []*proc{a, b} {
		waitStatus(t, p.url+"readyz", http.StatusOK)
	}
	if code, body := revoke(a, `{"jti":["carol-1"]}`); code != 200 {
		t.Fatalf("revoke again once NATS is back: %d %s", code, body)
	}
	refused(b, carol, "b once the revocation was sent again")
	for _, p := range []*proc{a, b, c, d} {
		if code := p.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d:\n%s", code, p.logs())
		}
	}
}

// TestClusterLargeDocuments: in cluster mode a document is bounded by the
// NATS servers' max_payload (one op is one message, a snapshot one KV
// value), not refused as internal: under the default 1 MiB a 900 KB
// document is written and read on another node, a larger one is answered
// 413 too_large, and the node says at start why its limit is below
// --max-doc-bytes. With max_payload raised, a 2 MB document works.
func TestClusterLargeDocuments(t *testing.T) {
	ns := natsAt(t, -1, t.TempDir())
	a := start(t, "", nil, "--nats", ns.ClientURL(), "--node-name", "a")
	b := start(t, "", nil, "--nats", ns.ClientURL(), "--node-name", "b")
	if !strings.Contains(a.logs(), "limited below --max-doc-bytes by the NATS servers' max_payload") {
		t.Fatalf("no warning about the document limit:\n%s", a.logs())
	}
	text := strings.Repeat("0123456789\n", 900_000/11)
	putDoc(t, a, "large", text, 0)
	if rev, got := getDoc(t, b, "large"); rev != 1 || got != text {
		t.Fatalf("GET through b: rev %d, %d bytes", rev, len(got))
	}
	code, body, _ := httpDo(t, "PUT", a.url+"api/docs/larger", strings.Repeat("x", 1_200_000), "If-Match", "0")
	if code != http.StatusRequestEntityTooLarge || errCodeOf(t, body) != "too_large" {
		t.Fatalf("PUT over the limit: %d %s", code, body)
	}

	opts := natstest.Options(t.TempDir(), -1, true)
	opts.MaxPayload = 4 << 20
	big := runNATSServer(t, opts)
	c := start(t, "", nil, "--nats", big.ClientURL(), "--node-name", "c")
	text = strings.Repeat("abcdefghi\n", 200_000)
	putDoc(t, c, "two-mb", text, 0)
	if rev, got := getDoc(t, c, "two-mb"); rev != 1 || got != text {
		t.Fatalf("GET of 2 MB: rev %d, %d bytes", rev, len(got))
	}
	for _, p := range []*proc{a, b, c} {
		if code := p.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d:\n%s", code, p.logs())
		}
	}
}

// errCodeOf returns the code of an HTTP API error body.
func errCodeOf(tb testing.TB, body string) string {
	tb.Helper()
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		tb.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}
