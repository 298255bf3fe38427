// Package layers holds no code, only a test: it keeps the module's imports
// running one way, down the layers drawn in docs/architecture.md ("Layers"):
// app, edge, core, store, leaves, with the transport and the browser beside
// them. The test reads every package's imports, its tests' included, with
// `go list` and checks each module-internal import against a table of rules,
// one row per layer; imports from outside the module are not checked.
//
// A new package must be given a layer in that table (the test fails until it
// is), and docs/architecture.md names it too.
package layers
