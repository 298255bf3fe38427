package sockets_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/sockets"
)

// A chat server: mount the Server at /socket.io/, register handlers per socket.
func Example() {
	srv, err := sockets.New(sockets.Config{Recovery: sockets.Recovery{Enabled: true}})
	if err != nil {
		log.Fatal(err)
	}
	type chatMsg struct {
		Room string `json:"room"`
		Text string `json:"text"`
	}
	srv.OnConnection(func(s *sockets.Socket) {
		s.On("join", func(s *sockets.Socket, ev *sockets.Event) {
			var room string
			if err := ev.Decode(&room); err != nil {
				return
			}
			s.Join(room)
			_ = ev.Ack.Reply(map[string]any{"ok": true})
		})
		s.On("say", sockets.Handle(func(s *sockets.Socket, m chatMsg, ack *sockets.Ack) {
			_ = s.To(m.Room).Emit("said", map[string]string{"from": s.ID(), "text": m.Text})
			_ = ack.Reply(map[string]any{"ok": true})
		}, nil))
		s.OnDisconnect(func(s *sockets.Socket, reason string) { log.Printf("%s left: %s", s.ID(), reason) })
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := &http.Server{Addr: "127.0.0.1:3000", Handler: mux}
	go func() { _ = hs.ListenAndServe() }()

	// ... on SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	_ = srv.Shutdown(ctx)
}

// Middlewares refuse connections with a message and data the client sees in connect_error.
func ExampleNamespace_Use() {
	srv, _ := sockets.New(sockets.Config{})
	admin := srv.Of("/admin")
	admin.Use(func(s *sockets.Socket) error {
		var auth struct {
			Token string `json:"token"`
		}
		if err := s.DecodeAuth(&auth); err != nil || auth.Token != "letmein" {
			return &sockets.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "invalid token"}}
		}
		return nil
	})
	fmt.Println(admin.Name())
	// Output: /admin
}

// Binary values ([]byte or sockets.Binary), anywhere in the arguments, travel as attachments.
func ExampleSocket_Emit() {
	srv, _ := sockets.New(sockets.Config{})
	srv.OnConnection(func(s *sockets.Socket) {
		type file struct {
			Name string `json:"name"`
			Data []byte `json:"data"`
		}
		_ = s.Emit("file", file{Name: "a.bin", Data: []byte{1, 2, 3}})
	})
}

// Server-to-client acknowledgements, with a callback from a handler.
func ExampleSocket_EmitWithAckFunc() {
	srv, _ := sockets.New(sockets.Config{})
	srv.OnConnection(func(s *sockets.Socket) {
		_ = s.EmitWithAckFunc("ping", 3*time.Second, func(r *sockets.Reply, err error) {
			if err != nil {
				log.Printf("no answer: %v", err)
				return
			}
			var answer string
			_ = r.Decode(&answer)
		})
	})
}

// Encode once, send to many: an event for the members of a document, encoded once and queued
// for each of them with SendEncoded (each member's connection shares the same frames).
func ExampleEncodeEvent() {
	type opEvent struct {
		Doc string `json:"doc"`
		Rev uint64 `json:"rev"`
	}
	enc, err := sockets.EncodeEvent("/", "doc:op", opEvent{Doc: "notes", Rev: 7})
	if err != nil {
		log.Fatal(err)
	}
	var members []*sockets.Socket // the sockets of namespace "/" to send it to
	for _, s := range members {
		_ = s.SendEncoded(enc, false) // never blocks; a slow member is disconnected
	}
	fmt.Println(string(enc.Packet.Data))
	// Output: ["doc:op",{"doc":"notes","rev":7}]
}

// The same event on a hot path: the JSON is written by hand into the buffer the engine sends,
// without reflection and without a copy.
func ExampleEventWriter() {
	var w sockets.EventWriter
	b := w.Start("/", "doc:op", 32) // room for the arguments' JSON
	b = w.Arg(b)
	b = append(b, `{"doc":"notes","rev":`...)
	b = strconv.AppendUint(b, 7, 10)
	b = append(b, '}')
	enc, err := w.Encode(b) // keeps b: do not modify it afterwards
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(enc.Packet.Data))
	// Output: ["doc:op",{"doc":"notes","rev":7}]
}

// Several nodes behind one endpoint: each node connects to NATS and builds its namespaces'
// adapters with NewNATSAdapter; a broadcast on any node reaches the selected sockets of every
// node. (Compiled, not run: it needs a NATS server; adapter_nats_test.go runs the same setup
// against an embedded one.)
func ExampleNewNATSAdapter() {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close() // after srv.Shutdown, which closes the adapters
	srv, err := sockets.New(sockets.Config{
		Adapter: sockets.NewNATSAdapter(nc, sockets.NATSAdapterOptions{Prefix: "myapp.sockets"}),
	})
	if err != nil {
		log.Fatal(err)
	}
	srv.OnConnection(func(s *sockets.Socket) {
		s.On("join", func(s *sockets.Socket, ev *sockets.Event) {
			var room string
			if ev.Decode(&room) == nil {
				s.Join(room) // membership stays on this node
			}
		})
		s.On("say", func(s *sockets.Socket, ev *sockets.Event) {
			var room, text string
			if ev.Decode(&room, &text) == nil {
				// Every member of room on every node but the sender.
				_ = s.To(room).Emit("said", s.ID(), text)
			}
		})
	})
	// Across nodes too: who is in a room, wherever they are connected.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	members, err := srv.Of("/").In("lobby").FetchSockets(ctx)
	fmt.Println(len(members), err)

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	log.Fatal(http.ListenAndServe("127.0.0.1:3000", mux))
}
