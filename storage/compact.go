package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrLocked: another process (a running server) holds the bbolt file's
// lock, so an offline operation (Compact) cannot run.
var ErrLocked = errors.New("storage: the data file is locked by another process")

// compactSuffix names the file a compaction writes before renaming it over
// the data file; a leftover of a crashed compaction is removed by the next.
const compactSuffix = ".compact-tmp"

// CompactResult reports the bytes on disk before and after a compaction:
// the bbolt file and the journal directory beside it.
type CompactResult struct {
	FileBefore, FileAfter       int64 // the bbolt file
	JournalBefore, JournalAfter int64 // the journal segments and epoch file
}

// Before is every byte of the store before the compaction.
func (r CompactResult) Before() int64 { return r.FileBefore + r.JournalBefore }

// After is every byte of the store after the compaction.
func (r CompactResult) After() int64 { return r.FileAfter + r.JournalAfter }

// Compact rewrites the store at path offline, so that the file holds only
// live pages and no byte of a deleted document or folded record remains in
// the data directory:
//
//  1. open the store read-write (the exclusive lock; ErrLocked when a
//     server holds it for longer than timeout), which replays the
//     journal, and checkpoint;
//  2. copy every live key into path+".compact-tmp" with bbolt's own
//     compaction (bolt.Compact: fresh pages, nothing of the free ones),
//     each of its transactions synced;
//  3. rename it over path and sync the directory, still holding the old
//     file's lock;
//  4. close the old file and delete the journal directory: every frame in
//     it is at or below the checkpoint the new file holds.
//
// A crash before step 3 leaves the old file (and a temporary file, removed
// by the next Compact); after it, the new file, whose checkpoint covers
// every frame the journal still holds. A server started during the
// compaction waits for the lock of the old file and then notices the
// rename (OpenBolt reopens when the path names another file once it holds
// the lock).
func Compact(ctx context.Context, path string, timeout time.Duration) (CompactResult, error) {
	var res CompactResult
	tmp := path + compactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	var err error
	if res.FileBefore, err = fileSize(path); err != nil {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	res.JournalBefore = dirSize(journalDir(path))
	if timeout <= 0 {
		timeout = time.Second
	}
	s, err := OpenBolt(path, Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return res, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return res, err
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if err := s.Checkpoint(ctx); err != nil {
		return res, err
	}
	err = compactCopy(ctx, s.db, tmp, &bolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	closed = true
	// Nothing is pending: Close only closes the old file and the
	// journal's segments.
	if err := s.Close(); err != nil {
		return res, fmt.Errorf("storage: compact: closing the old file: %w", err)
	}
	if err := os.RemoveAll(journalDir(path)); err != nil {
		return res, fmt.Errorf("storage: compact: removing the journal: %w", err)
	}
	if res.FileAfter, err = fileSize(path); err != nil {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	res.JournalAfter = dirSize(journalDir(path))
	return res, nil
}

// bucketStats holds counters that outlive a process: keyCompactions ->
// compactions of this file (8 bytes BE) and the Unix time of the last (8
// bytes BE).
var (
	bucketStats    = []byte("stats")
	keyCompactions = []byte("compactions")
)

// countCompaction counts one more compaction in the new file.
func countCompaction(tx *bolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucketStats)
	if err != nil {
		return err
	}
	var n uint64
	if v := b.Get(keyCompactions); len(v) == 16 {
		n = binary.BigEndian.Uint64(v)
	}
	v := binary.BigEndian.AppendUint64(nil, n+1)
	v = binary.BigEndian.AppendUint64(v, uint64(time.Now().Unix()))
	return b.Put(keyCompactions, v)
}

// Compactions returns how many times the file was compacted (collabd
// compact) and when last (zero time: never).
func (s *Bolt) Compactions() (n uint64, last time.Time) {
	_ = s.view(context.Background(), func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStats); b != nil {
			if v := b.Get(keyCompactions); len(v) == 16 {
				n = binary.BigEndian.Uint64(v)
				last = time.Unix(int64(binary.BigEndian.Uint64(v[8:])), 0).UTC()
			}
		}
		return nil
	})
	return n, last
}

// StoredBytes returns the bytes the store takes on disk: the bbolt file
// and the journal directory.
func (s *Bolt) StoredBytes() int64 {
	n, _ := fileSize(s.Path())
	return n + dirSize(journalDir(s.Path()))
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// dirSize is the total size of the regular files in dir (0 when it does
// not exist).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// CompactOnline compacts the store while it stays open. Checkpoints and
// the writes that bypass the journal (named versions, folds) wait during
// the copy; commits go on into the journal (until its back pressure,
// four times Options.CheckpointBytes, makes them wait for the
// checkpoint); reads go on until the swap (readers of the old file finish
// first). It checkpoints the journal, copies every live key into a
// temporary file with bolt.Compact, renames it over the file, opens it and
// closes the old one, then checkpoints again and overwrites every journal
// segment with zeros, commits waiting meanwhile: after it no byte of a
// deleted document or a folded record remains in the data directory. A
// crash before the rename leaves the old file; after it, the new one,
// whose checkpoint LSN is the old one's: the journal replays the same
// frames on top of either.
func (s *Bolt) CompactOnline(ctx context.Context) (CompactResult, error) {
	var res CompactResult
	if s.opts.ReadOnly {
		return res, fmt.Errorf("%w: compaction of a read-only store", ErrInvalid)
	}
	if err := s.compactSwap(ctx, &res); err != nil {
		return res, err
	}
	if s.journal != nil {
		s.commitMu.Lock()
		s.ckptMu.Lock()
		err := s.checkpointLocked(math.MaxUint64)
		if err == nil && !s.closed.Load() {
			if err = s.journal.scrub(); err != nil {
				s.mu.Lock()
				s.stats.Poisoned = true
				s.mu.Unlock()
			}
		}
		s.ckptMu.Unlock()
		s.commitMu.Unlock()
		if err != nil {
			return res, err
		}
	}
	var err error
	if res.FileAfter, err = fileSize(s.path); err != nil {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	res.JournalAfter = dirSize(journalDir(s.path))
	return res, nil
}

// compactCopy writes a compacted copy of src to the new file tmp, opened
// with opts, and counts the compaction in it; on an error (or the end of
// ctx) tmp is removed.
func compactCopy(ctx context.Context, src *bolt.DB, tmp string, opts *bolt.Options) error {
	dst, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		return err
	}
	err = bolt.Compact(dst, src, 64<<20)
	if err == nil {
		err = dst.Update(countCompaction)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// compactSwap is CompactOnline up to the swap of the files.
func (s *Bolt) compactSwap(ctx context.Context, res *CompactResult) error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.directMu.Lock()
	defer s.directMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.journal != nil {
		if err := s.checkpointLocked(math.MaxUint64); err != nil {
			return err
		}
	}
	path := s.path
	tmp := path + compactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: compact: %w", err)
	}
	var err error
	if res.FileBefore, err = fileSize(path); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	res.JournalBefore = dirSize(journalDir(path))
	// Nobody writes s.db meanwhile: checkpoints and direct writes wait on
	// the locks held here, commits only append to the journal.
	if err := compactCopy(ctx, s.db, tmp, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, NoSync: s.opts.NoSync}); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	s.swapMu.Lock()
	err = os.Rename(tmp, path)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	var db *bolt.DB
	if err == nil {
		db, err = bolt.Open(path, 0o600, boltOptions(s.opts))
	}
	if err != nil {
		// The rename may have happened: the old file stays open and in
		// use (its lock held); the next open takes whichever file the
		// path names, both complete.
		s.swapMu.Unlock()
		os.Remove(tmp)
		return fmt.Errorf("storage: compact: %w", err)
	}
	old := s.db
	s.db = db
	s.swapMu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("storage: compact: closing the old file: %w", err)
	}
	return nil
}
