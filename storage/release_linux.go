package storage

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMap drops this process's page table entries for bbolt's map of
// the file (MADV_DONTNEED on a read-only shared file mapping: the pages
// stay in the page cache and the next access maps them again, with the
// same bytes). Between checkpoints the server hardly reads the file, so
// its resident set is its heap, not every page a checkpoint ever touched.
//
// tx must be a writable transaction: bbolt remaps only while committing
// one, and only one runs at a time, so the map cannot move meanwhile; and
// the range is the part of the file in use when tx began, which the map
// always covers.
func releaseMap(tx *bolt.Tx) {
	data, size := tx.DB().Info().Data, tx.Size()
	if data == 0 || size <= 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(size), syscall.MADV_DONTNEED)
}
