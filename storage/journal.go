package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrJournalPending: a read-only open found commits in the journal that
// the bbolt file does not hold yet (the server that wrote them crashed).
// Open the store read-write once (that replays them) and read again.
var ErrJournalPending = errors.New("storage: journal holds commits not yet in the file (open read-write to recover them)")

// Journal files, in the directory <db path>-journal:
//
//	epoch          the current epoch: 8 bytes, little endian
//	seg-NNNNNNNN   segments: frames back to back from offset 0, then
//	               zeros or stale frames of an earlier epoch or LSN
const (
	journalSuffix = "-journal"
	epochFile     = "epoch"
	segPrefix     = "seg-"
)

// journalDir returns the journal directory of the bbolt file at path.
func journalDir(path string) string { return path + journalSuffix }

// segment is one journal file.
type segment struct {
	num  uint64
	f    *os.File
	size int64
	// maxLSN is the newest frame written since the segment was (re)used;
	// written by the committer, read under journal.mu once the segment
	// is full.
	maxLSN uint64
	// sparse: made by truncation, not written through. Each append into
	// it allocates blocks, and its fdatasync then commits file system
	// metadata too (here 330 µs instead of 230 µs), so it is left as soon
	// as a written-through spare is ready, and deleted once free.
	sparse bool
}

// journal is the write side of the write-ahead log. The append path
// (append, rotate) is used by one goroutine at a time: Bolt.commitMu is
// held around it.
type journal struct {
	dir     string
	epoch   uint64
	segSize int64
	noSync  bool

	// Owned by the committer (Bolt.commitMu held).
	active  *segment
	off     int64  // next write offset in active
	buf     []byte // frame buffer, reused
	nextLSN uint64
	err     error // poison: the first failed write or sync

	mu sync.Mutex // guards full, free, nextNum, closed
	// full are segments written to and left, in write order: recycled
	// once a checkpoint covers their maxLSN.
	full    []*segment
	free    []*segment // written-through segments ready for reuse
	nextNum uint64     // number of the next new segment file
	closed  bool
}

// journalFrame is one frame found by a scan.
type journalFrame struct {
	lsn     uint64
	payload []byte
}

// readEpoch returns the epoch stored in dir (0 when there is none).
func readEpoch(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, epochFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: journal epoch file of %d bytes", ErrCorrupt, len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

// writeEpoch stores a new random epoch in dir durably and returns it.
func writeEpoch(dir string) (uint64, error) {
	var b [8]byte
	var epoch uint64
	for epoch == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		epoch = binary.LittleEndian.Uint64(b[:])
	}
	tmp := filepath.Join(dir, epochFile+".tmp")
	if err := writeFileSync(tmp, b[:]); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, epochFile)); err != nil {
		return 0, err
	}
	return epoch, syncDir(dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || strings.HasSuffix(name, ".tmp") {
			continue
		}
		n, err := strconv.ParseUint(name[len(segPrefix):], 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

func segName(dir string, num uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%08d", segPrefix, num))
}

// scanJournal reads every segment in dir and returns the frames of epoch
// with lsn > after that continue after without a gap, ascending. Within a
// segment the scan stops at the first invalid frame (zeros, a torn write,
// a frame of another epoch); frames of the epoch at or below after
// (already checkpointed, or stale in a recycled segment) are passed over.
// Frames are unique per (epoch, LSN): a failed write poisons the journal
// and a new open starts a new epoch, so the order of the segments does not
// matter.
func scanJournal(dir string, epoch, after uint64) ([]journalFrame, error) {
	if epoch == 0 {
		return nil, nil
	}
	nums, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	found := map[uint64][]byte{}
	for _, num := range nums {
		b, err := os.ReadFile(segName(dir, num))
		if err != nil {
			return nil, err
		}
		for off := 0; ; {
			lsn, payload, n, ok := parseFrame(b[off:], epoch)
			if !ok {
				break
			}
			if lsn > after {
				found[lsn] = payload
			}
			off += n
		}
	}
	var out []journalFrame
	for lsn := after + 1; ; lsn++ {
		p, ok := found[lsn]
		if !ok {
			break
		}
		out = append(out, journalFrame{lsn: lsn, payload: p})
	}
	return out, nil
}

// openJournal starts a journal in dir after recovery: a new epoch, every
// existing segment free for reuse, the next frame numbered nextLSN.
func openJournal(dir string, segSize int64, noSync bool, nextLSN uint64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	epoch, err := writeEpoch(dir)
	if err != nil {
		return nil, err
	}
	j := &journal{dir: dir, epoch: epoch, segSize: segSize, noSync: noSync, nextLSN: nextLSN, nextNum: 1}
	nums, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for _, num := range nums {
		f, err := os.OpenFile(segName(dir, num), os.O_RDWR, 0)
		if err != nil {
			j.close()
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			j.close()
			return nil, err
		}
		j.free = append(j.free, &segment{num: num, f: f, size: st.Size()})
		j.nextNum = max(j.nextNum, num+1)
	}
	// Leftovers of an interrupted spare preparation.
	if tmps, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*.tmp")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	return j, nil
}

// takeSegment returns a free segment of at least need bytes, or creates a
// sparse one (the spare preparation normally keeps a written-through one
// ready).
func (j *journal) takeSegment(need int64) (*segment, error) {
	j.mu.Lock()
	for i, s := range j.free {
		if s.size >= need {
			j.free = append(j.free[:i], j.free[i+1:]...)
			j.mu.Unlock()
			return s, nil
		}
	}
	num := j.nextNum
	j.nextNum++
	j.mu.Unlock()
	size := max(j.segSize, need)
	f, err := os.OpenFile(segName(j.dir, num), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &segment{num: num, f: f, size: size, sparse: true}, nil
}

// prepareSpare makes sure one free segment is ready, creating it zero
// filled (written and synced, so that later writes into it are plain
// overwrites). It runs off the commit path.
func (j *journal) prepareSpare() error {
	j.mu.Lock()
	if len(j.free) > 0 || j.closed {
		j.mu.Unlock()
		return nil
	}
	num := j.nextNum
	j.nextNum++
	j.mu.Unlock()
	final := segName(j.dir, num)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < j.segSize && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), j.segSize-off)], off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return f.Close()
	}
	j.free = append(j.free, &segment{num: num, f: f, size: j.segSize})
	return nil
}

// append encodes writes into one frame, writes it and syncs it (unless
// noSync). It returns the frame's LSN, its size and where it lies. A
// failed write or sync poisons the journal: that call and every later one
// fail. The caller holds Bolt.commitMu.
func (j *journal) append(writes []Write) (lsn uint64, size int, at frameLoc, rotated bool, err error) {
	if j.err != nil {
		return 0, 0, at, false, j.err
	}
	lsn = j.nextLSN
	if cap(j.buf) < frameHeaderSize {
		j.buf = make([]byte, 0, 64<<10)
	}
	b := appendPayload(j.buf[:frameHeaderSize], writes)
	if len(b)-frameHeaderSize > maxFramePayload {
		return 0, 0, at, false, fmt.Errorf("%w: batch of %d bytes", ErrInvalid, len(b))
	}
	putFrameHeader(b, j.epoch, lsn)
	j.buf = b
	size = len(b)
	if j.active == nil || j.off+int64(size) > j.active.size || (j.active.sparse && j.spareReady(int64(size))) {
		if err := j.rotate(int64(size)); err != nil {
			j.err = fmt.Errorf("storage: journal: new segment: %w", err)
			return 0, 0, at, false, j.err
		}
		rotated = true
	}
	if _, err := j.active.f.WriteAt(b, j.off); err != nil {
		j.err = fmt.Errorf("storage: journal: write: %w", err)
		return 0, 0, at, false, j.err
	}
	if !j.noSync {
		if err := datasync(j.active.f); err != nil {
			j.err = fmt.Errorf("storage: journal: sync: %w", err)
			return 0, 0, at, false, j.err
		}
	}
	at = frameLoc{seg: j.active, off: j.off}
	j.off += int64(size)
	j.active.maxLSN = lsn
	j.nextLSN++
	if cap(j.buf) > 4<<20 {
		j.buf = nil // do not keep a large commit's buffer
	}
	return lsn, size, at, rotated, nil
}

// frameLoc is where a frame lies in the journal.
type frameLoc struct {
	seg *segment
	off int64
}

// readFrames reads the payloads of frames (written in this epoch and not
// yet recycled) back from their segments, into one buffer, in order; the
// frames that lie back to back in a segment (all of them, between
// rotations) take one read. The segments are in the page cache unless
// memory is short: keeping the payloads until their checkpoint would cost
// a copy in the heap instead.
func (j *journal) readFrames(frames []pendingFrame) ([][]byte, error) {
	total := 0
	for _, f := range frames {
		total += f.size
	}
	buf := make([]byte, total)
	out := make([][]byte, len(frames))
	for i := 0; i < len(frames); {
		// frames[i:k] are contiguous in one segment.
		start, n, k := frames[i].at, frames[i].size, i+1
		for k < len(frames) && frames[k].at.seg == start.seg && frames[k].at.off == start.off+int64(n) {
			n += frames[k].size
			k++
		}
		b := buf[:n:n]
		buf = buf[n:]
		if _, err := start.seg.f.ReadAt(b, start.off); err != nil {
			return nil, fmt.Errorf("storage: journal: reading frame %d back: %w", frames[i].lsn, err)
		}
		for ; i < k; i++ {
			f := frames[i]
			lsn, payload, m, ok := parseFrame(b[:f.size], j.epoch)
			if !ok || lsn != f.lsn || m != f.size {
				return nil, fmt.Errorf("%w: journal frame %d reads back damaged", ErrCorrupt, f.lsn)
			}
			out[i] = payload
			b = b[f.size:]
		}
	}
	return out, nil
}

// spareReady reports whether a written-through free segment of at least
// need bytes is ready.
func (j *journal) spareReady(need int64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.free {
		if !s.sparse && s.size >= need {
			return true
		}
	}
	return false
}

// rotate leaves the active segment for one with room for need bytes.
func (j *journal) rotate(need int64) error {
	s, err := j.takeSegment(need)
	if err != nil {
		return err
	}
	s.maxLSN = 0
	j.mu.Lock()
	if j.active != nil {
		j.full = append(j.full, j.active)
	}
	j.active, j.off = s, 0
	j.mu.Unlock()
	return nil
}

// recycle frees the full segments whose frames are all checkpointed
// (lsn <= through).
func (j *journal) recycle(through uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	keep := j.full[:0]
	for _, s := range j.full {
		if s.maxLSN <= through && s.sparse {
			// Its stale frames are of an older LSN: a leftover file
			// (a failed remove) is passed over by a scan.
			s.f.Close()
			os.Remove(segName(j.dir, s.num))
		} else if s.maxLSN <= through {
			j.free = append(j.free, s)
		} else {
			keep = append(keep, s)
		}
	}
	clear(j.full[len(keep):])
	j.full = keep
}

// segments returns how many segment files the journal holds.
func (j *journal) segments() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(j.full) + len(j.free)
	if j.active != nil {
		n++
	}
	return n
}

// close closes every segment file. The caller holds Bolt.commitMu.
func (j *journal) close() error {
	j.mu.Lock()
	j.closed = true
	all := append(append([]*segment(nil), j.full...), j.free...)
	if j.active != nil {
		all = append(all, j.active)
	}
	j.full, j.free, j.active = nil, nil, nil
	j.mu.Unlock()
	var errs []error
	for _, s := range all {
		if err := s.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if j.err == nil {
		j.err = ErrClosed
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so that the names created in it survive a
// crash (a no-op where directories cannot be synced).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	if err != nil && (errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrPermission)) {
		return nil // Windows and some file systems
	}
	return err
}

// scrub overwrites every segment with zeros and syncs it, so that no byte
// of an old frame stays on disk, and starts the active segment over at
// offset 0. Every frame must be checkpointed and the caller holds
// Bolt.commitMu (no append runs). A failure poisons the journal, as a
// failed append does.
func (j *journal) scrub() error {
	if j.err != nil {
		return j.err
	}
	j.mu.Lock()
	all := append(append([]*segment(nil), j.full...), j.free...)
	if j.active != nil {
		all = append(all, j.active)
	}
	j.mu.Unlock()
	zeros := make([]byte, 1<<20)
	for _, s := range all {
		var err error
		for off := int64(0); off < s.size && err == nil; off += int64(len(zeros)) {
			_, err = s.f.WriteAt(zeros[:min(int64(len(zeros)), s.size-off)], off)
		}
		if err == nil {
			err = s.f.Sync()
		}
		if err != nil {
			j.err = fmt.Errorf("storage: journal: scrub: %w", err)
			return j.err
		}
	}
	j.mu.Lock()
	for _, s := range all {
		s.sparse = false // written through now
		s.maxLSN = 0
	}
	j.free = append(j.free, j.full...)
	j.full = nil
	j.mu.Unlock()
	j.off = 0
	return nil
}
