// Package natstest runs embedded NATS servers (github.com/nats-io/nats-server)
// for the tests of the packages that use NATS: one server, with or without
// JetStream, or a three-server JetStream cluster, each on 127.0.0.1 and
// shut down at the test's cleanup. Only test files import it, so the server
// is never linked into collabd (cmd/collabd-load checks that).
package natstest
