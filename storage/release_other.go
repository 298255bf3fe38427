//go:build !linux

package storage

import bolt "go.etcd.io/bbolt"

// releaseMap is only implemented on Linux.
func releaseMap(*bolt.Tx) {}
