package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
)

// Layout of a bbolt meta page (bbolt file format version 2): a 16-byte page
// header, then magic, version, page size, flags (4 bytes each), the root
// bucket (16), freelist page, high-water mark, transaction id (8 each) and
// an FNV-64a checksum of the meta fields before it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaOff        = 16
	metaChecksumAt = metaOff + 56
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high-water mark: pages in use
	txid     uint64
}

func parseBoltMeta(b []byte) (boltMeta, bool) {
	if len(b) < metaChecksumAt+8 {
		return boltMeta{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(b[metaOff:]) != boltMagic || le.Uint32(b[metaOff+4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(b[metaOff:metaChecksumAt])
	if h.Sum64() != le.Uint64(b[metaChecksumAt:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(b[metaOff+8:]), pgid: le.Uint64(b[metaOff+40:]), txid: le.Uint64(b[metaOff+48:])}, true
}

// precheckFile refuses a bbolt file shorter than the pages its newest valid
// meta page references (a file truncated below its high-water mark). bbolt
// would otherwise fault on the missing pages, in a goroutine where the
// panic cannot be recovered. A missing or empty file passes (bbolt creates
// it); a file with no valid meta page is left to bbolt to refuse.
func precheckFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	var best boltMeta
	found := false
	m0 := make([]byte, 128)
	if _, err := f.ReadAt(m0, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	sizes := []int64{4096, int64(os.Getpagesize())}
	if m, ok := parseBoltMeta(m0); ok {
		best, found = m, true
		sizes = []int64{int64(m.pageSize)}
	}
	for _, ps := range sizes {
		m1 := make([]byte, 128)
		if _, err := f.ReadAt(m1, ps); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if m, ok := parseBoltMeta(m1); ok && int64(m.pageSize) == ps && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	if found && uint64(st.Size()) < best.pgid*uint64(best.pageSize) {
		return fmt.Errorf("%w: file is %d bytes but its newest meta page references %d pages of %d bytes (truncated?)",
			ErrCorrupt, st.Size(), best.pgid, best.pageSize)
	}
	return nil
}
