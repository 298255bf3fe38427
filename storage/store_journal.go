package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// JournalStats are the journal's counters, for /metrics.
type JournalStats struct {
	Enabled            bool          // false with NoJournal or ReadOnly
	Frames             uint64        // frames appended since open (one per Commit)
	Bytes              uint64        // bytes appended since open
	Replayed           uint64        // frames replayed from the journal at open
	Checkpoints        uint64        // checkpoints run since open
	CheckpointedFrames uint64        // frames applied to bbolt by those checkpoints
	CheckpointTime     time.Duration // total wall time spent in checkpoints
	CheckpointErrors   uint64        // checkpoints that failed (bbolt refused the transaction)
	PendingFrames      int           // frames in the journal not yet in bbolt
	PendingBytes       int64         // their bytes
	LSN                uint64        // newest frame appended (0: none yet)
	CheckpointLSN      uint64        // newest frame in bbolt
	Segments           int           // segment files, written-through spares included
	Poisoned           bool          // a write or sync failed: every later Commit fails
}

// jstate is the journal side of Bolt.
type jstate struct {
	journal *journal // nil with NoJournal or ReadOnly

	// commitMu serializes Commit (validation, append, pending update) and
	// Close; it guards the journal's append side.
	commitMu sync.Mutex

	// ckptMu serializes checkpoints.
	ckptMu sync.Mutex

	mu sync.Mutex // guards the fields below
	// pending are the frames appended and not yet checkpointed, ascending.
	pending      []pendingFrame
	pendingBytes int64
	// docs holds the logical metadata of every document that pending
	// frames touch (bbolt's is older).
	docs    map[string]*pendingDoc
	ckptLSN uint64
	stats   JournalStats

	kick chan struct{} // wakes the background loop
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the loop returns
}

// pendingFrame is a frame not yet in bbolt. Its payload stays in the
// segment file only (read back by checkpoints and pendingRecords): at
// high rates a second of frames is megabytes of heap, which the garbage
// collector's goal would double.
type pendingFrame struct {
	lsn  uint64
	size int
	when time.Time
	at   frameLoc
}

// pendingDoc is the logical state of a document touched by pending frames.
type pendingDoc struct {
	meta   Meta
	exists bool   // false: deleted by a pending frame
	last   uint64 // LSN of the newest pending frame touching it
	// frames are the pending frames touching the document, ascending:
	// Records is served from them without a checkpoint.
	frames []pendingRef
}

// pendingRef is one pending frame's part of a document.
type pendingRef struct {
	lsn   uint64
	first uint64 // revision of its first record, 0 when it appends none
	del   bool   // it deletes the document
}

// readCheckpoint returns the LSN of the newest frame in bbolt.
func readCheckpoint(tx *bolt.Tx) uint64 {
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return 0
	}
	v := b.Get(keyCheckpoint)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putCheckpoint(tx *bolt.Tx, lsn uint64) error {
	b, err := tx.CreateBucketIfNotExists(bucketJournal)
	if err != nil {
		return err
	}
	return b.Put(keyCheckpoint, binary.BigEndian.AppendUint64(nil, lsn))
}

// recover replays the journal next to path into bbolt (read-write) or
// refuses to open when it holds commits the file lacks (ReadOnly), then
// starts a new journal unless NoJournal or ReadOnly.
func (s *Bolt) recover(path string) error {
	dir := journalDir(path)
	epoch, err := readEpoch(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var ckpt uint64
	s.db.View(func(tx *bolt.Tx) error {
		ckpt = readCheckpoint(tx)
		return nil
	})
	frames, err := scanJournal(dir, epoch, ckpt)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(frames) > 0 && s.opts.ReadOnly {
		return fmt.Errorf("%w: %d frames after %d in %s", ErrJournalPending, len(frames), ckpt, dir)
	}
	if len(frames) > 0 {
		last := frames[len(frames)-1].lsn
		err := s.db.Update(func(tx *bolt.Tx) error {
			return applyFrames(tx, frames, last)
		})
		if err == nil && s.opts.NoSync {
			// The new epoch below makes these frames stale: they must
			// be in the file for good first.
			err = s.db.Sync()
		}
		if err != nil {
			return fmt.Errorf("journal replay: %w", err)
		}
		ckpt = last
		s.stats.Replayed = uint64(len(frames))
	}
	if s.opts.NoJournal || s.opts.ReadOnly {
		return nil
	}
	j, err := openJournal(dir, s.opts.JournalSegmentSize, s.opts.NoSync, ckpt+1)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	s.journal = j
	s.ckptLSN = ckpt
	s.docs = map[string]*pendingDoc{}
	s.stats.Enabled = true
	s.stats.LSN, s.stats.CheckpointLSN = ckpt, ckpt
	s.kick = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.kickLoop() // prepare a spare segment
	go s.loop()
	return nil
}

// applyFrames applies journal frames in order inside tx and records last
// as the checkpoint. The effect is that of applying each write in turn,
// but the puts are reordered: each document's metadata is read once and
// written once, and the records and snapshots are put document by
// document in key order at the end (a delete is done at once and drops
// the document's puts collected so far). bbolt inserts into in-memory
// leaves that hold several documents' tails; in frame order each insert
// would move every entry after it, the other documents' new records
// included.
func applyFrames(tx *bolt.Tx, frames []journalFrame, last uint64) error {
	docs := map[string]*txDoc{}
	for _, f := range frames {
		ws, err := decodePayload(f.payload)
		if err != nil {
			return fmt.Errorf("frame %d: %w", f.lsn, err)
		}
		for i := range ws {
			if err := applyJWrite(tx, &ws[i], docs); err != nil {
				return fmt.Errorf("frame %d: %w", f.lsn, err)
			}
		}
	}
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	slices.Sort(ids) // key order: ids never contain the zero byte after them
	mb, lb, sb, hb := tx.Bucket(bucketMeta), tx.Bucket(bucketLog), tx.Bucket(bucketSnap), tx.Bucket(bucketHead)
	lb.FillPercent = logFillPercent
	var key []byte // bbolt copies keys: one buffer serves every record
	for _, id := range ids {
		d := docs[id]
		for _, r := range d.recs {
			key = appendDocKey(key[:0], id, r.rev)
			if err := lb.Put(key, r.v); err != nil {
				return err
			}
		}
		for _, p := range d.snaps {
			if err := sb.Put(p.k, p.v); err != nil {
				return err
			}
		}
		switch d.slot {
		case slotPut:
			if err := hb.Put([]byte(id), d.head); err != nil {
				return err
			}
		case slotDrop:
			if err := hb.Delete([]byte(id)); err != nil {
				return err
			}
		}
		if d.exists {
			if err := mb.Put([]byte(id), appendMeta(nil, &d.meta)); err != nil {
				return err
			}
		}
	}
	return putCheckpoint(tx, last)
}

// txDoc is a document during applyFrames: its metadata and the puts not
// done yet.
type txDoc struct {
	meta   Meta
	exists bool
	recs   []revValue
	snaps  []keyValue
	slot   int    // the head slot's last action (slotAction)
	head   []byte // the slot's value when slot is slotPut
}

type keyValue struct{ k, v []byte }

// revValue is a record to put: its revision and its encoded value.
type revValue struct {
	rev uint64
	v   []byte
}

// applyJWrite is applyWrite for a write decoded from the journal: its
// record values are already encoded (and stay alive until the transaction
// ends: they are slices of a pending frame's payload). The metadata and
// the puts are collected in docs; applyFrames does them at the end.
func applyJWrite(tx *bolt.Tx, w *jWrite, docs map[string]*txDoc) error {
	d := docs[w.doc]
	if d == nil {
		cur, exists, err := storedMeta(tx.Bucket(bucketMeta), w.doc)
		if err != nil {
			return err
		}
		d = &txDoc{meta: cur, exists: exists}
		docs[w.doc] = d
	}
	shape := w.shape()
	m, exists, err := advanceMeta(w.doc, d.meta, d.exists, shape)
	if err != nil {
		return err
	}
	switch a := slotAction(d.meta, shape); a {
	case slotPut:
		d.slot, d.head = a, appendHead(make([]byte, 0, 9+len(w.headText)), w.head.Rev, "")
		d.head = append(d.head, w.headText...)
	case slotDrop:
		d.slot, d.head = a, nil
	}
	d.meta, d.exists = m, exists
	if w.del {
		clear(d.recs)
		d.recs, d.snaps = d.recs[:0], nil
		d.slot, d.head = slotKeep, nil // deleteDoc empties it
		return deleteDoc(tx, w.doc)
	}
	for j, v := range w.recs {
		d.recs = append(d.recs, revValue{w.first + uint64(j), v})
	}
	if sn := w.snap; sn != nil {
		v := make([]byte, 0, 1+len(w.snapText))
		v = append(append(v, snapV1), w.snapText...)
		d.snaps = append(d.snaps, keyValue{docKey(w.doc, sn.Rev), v})
	}
	return nil
}

// commitJournal validates writes against the logical state (bbolt plus
// pending frames), appends them as one frame and records the new logical
// state. Commit has checked everything that needs no state.
func (s *Bolt) commitJournal(writes []Write) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	type next struct {
		meta   Meta
		exists bool
	}
	cur := make([]next, len(writes))
	var missing []int
	s.mu.Lock()
	for i := range writes {
		if d, ok := s.docs[writes[i].Doc]; ok {
			cur[i] = next{d.meta, d.exists}
		} else {
			missing = append(missing, i)
		}
	}
	s.mu.Unlock()
	// Documents with nothing pending: bbolt is their logical state (only
	// a Commit, which holds commitMu, can add pending frames).
	if len(missing) > 0 {
		err := s.dbView(func(tx *bolt.Tx) error {
			mb := tx.Bucket(bucketMeta)
			for _, i := range missing {
				m, exists, err := storedMeta(mb, writes[i].Doc)
				if err != nil {
					return err
				}
				cur[i] = next{m, exists}
			}
			return nil
		})
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		if err != nil {
			return err
		}
	}
	for i := range writes {
		m, exists, err := advanceMeta(writes[i].Doc, cur[i].meta, cur[i].exists, shapeOf(&writes[i]))
		if err != nil {
			return err
		}
		cur[i] = next{m, exists}
	}
	lsn, size, at, rotated, err := s.journal.append(writes)
	if err != nil {
		s.mu.Lock()
		s.stats.Poisoned = s.journal.err != nil
		s.mu.Unlock()
		return err
	}
	f := pendingFrame{lsn: lsn, size: size, when: time.Now(), at: at}
	s.mu.Lock()
	s.pending = append(s.pending, f)
	s.pendingBytes += int64(size)
	for i := range writes {
		d := s.docs[writes[i].Doc]
		if d == nil {
			d = &pendingDoc{}
			s.docs[writes[i].Doc] = d
		}
		d.meta, d.exists, d.last = cur[i].meta, cur[i].exists, lsn
		ref := pendingRef{lsn: lsn, del: writes[i].Delete}
		if len(writes[i].Records) > 0 {
			ref.first = writes[i].Records[0].Rev
		}
		d.frames = append(d.frames, ref)
	}
	s.stats.Frames++
	s.stats.Bytes += uint64(size)
	s.stats.LSN = lsn
	pendingBytes := s.pendingBytes
	s.mu.Unlock()
	if rotated || pendingBytes >= s.opts.CheckpointBytes {
		s.kickLoop()
	}
	// Back pressure: checkpoints that fall far behind stop the writers.
	// The commit itself is durable: a failed checkpoint is retried by
	// the loop (and reported by the reads that need it).
	if pendingBytes >= 4*s.opts.CheckpointBytes {
		s.checkpoint(lsn)
	}
	return nil
}

func (s *Bolt) kickLoop() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loop prepares spare segments and checkpoints when the pending bytes or
// the age of the oldest pending frame pass their thresholds.
func (s *Bolt) loop() {
	defer close(s.done)
	tick := time.NewTicker(max(s.opts.CheckpointInterval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-tick.C:
		}
		s.journal.prepareSpare() // on failure the commit path makes a sparse one
		s.mu.Lock()
		due := len(s.pending) > 0 &&
			(s.pendingBytes >= s.opts.CheckpointBytes || time.Since(s.pending[0].when) >= s.opts.CheckpointInterval)
		s.mu.Unlock()
		if due {
			s.checkpoint(math.MaxUint64)
		}
	}
}

// checkpoint makes sure every frame through LSN through is in bbolt: it
// applies every pending frame (through or not) in one bbolt transaction,
// records the checkpoint LSN in it, then drops the pending state it
// covered and recycles the segments it emptied. Commits continue
// meanwhile.
func (s *Bolt) checkpoint(through uint64) error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	return s.checkpointLocked(through)
}

// checkpointLocked is checkpoint with ckptMu held.
func (s *Bolt) checkpointLocked(through uint64) error {
	s.mu.Lock()
	if s.ckptLSN >= through || len(s.pending) == 0 {
		s.mu.Unlock()
		return nil
	}
	frames := s.pending[:len(s.pending):len(s.pending)]
	s.mu.Unlock()
	last := frames[len(frames)-1].lsn
	start := time.Now()
	payloads, err := s.journal.readFrames(frames)
	jf := make([]journalFrame, len(payloads))
	for i, f := range frames[:len(payloads)] {
		jf[i] = journalFrame{lsn: f.lsn, payload: payloads[i]}
	}
	if err == nil {
		err = s.dbUpdate(func(tx *bolt.Tx) error {
			releaseMap(tx) // the pages this checkpoint reads are mapped again
			return applyFrames(tx, jf, last)
		})
	}
	elapsed := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.CheckpointTime += elapsed
	if err != nil {
		s.stats.CheckpointErrors++
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	var bytes int64
	for _, f := range frames {
		bytes += int64(f.size)
	}
	rest := s.pending[len(frames):]
	s.pending = append(make([]pendingFrame, 0, max(len(rest), 16)), rest...)
	s.pendingBytes -= bytes
	for id, d := range s.docs {
		if d.last <= last {
			delete(s.docs, id)
			continue
		}
		keep := 0
		for keep < len(d.frames) && d.frames[keep].lsn <= last {
			keep++
		}
		d.frames = append(d.frames[:0:0], d.frames[keep:]...)
	}
	s.ckptLSN = last
	s.stats.Checkpoints++
	s.stats.CheckpointedFrames += uint64(len(frames))
	s.stats.CheckpointLSN = last
	s.journal.recycle(last)
	return nil
}

// pendingMeta returns the logical metadata of doc when pending frames
// touch it (ok true).
func (s *Bolt) pendingMeta(doc string) (m Meta, exists, ok bool) {
	if s.journal == nil {
		return Meta{}, false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[doc]
	if !ok {
		return Meta{}, false, false
	}
	return d.meta, d.exists, true
}

// pendingRecords answers Records for a document with pending frames
// without a checkpoint: the records bbolt has (those before the first
// pending one) and then those of the pending frames, decoded. ok is false
// when the document has no pending frames, or when one of them deletes it
// (the caller then goes through the barrier).
//
// The pending references are taken first and bbolt is read after: a
// checkpoint in between only moves frames this call already holds into
// bbolt, below which the pending records still start, so nothing is read
// twice or missed.
func (s *Bolt) pendingRecords(ctx context.Context, doc string, after uint64, limit int) (out []Record, ok bool, err error) {
	if s.journal == nil {
		return nil, false, nil
	}
	type part struct {
		first   uint64
		payload []byte
	}
	s.mu.Lock()
	d, found := s.docs[doc]
	if !found {
		s.mu.Unlock()
		return nil, false, nil
	}
	var parts []part
	var frames []pendingFrame
	for _, ref := range d.frames {
		if ref.del {
			s.mu.Unlock()
			return nil, false, nil
		}
		if ref.first == 0 {
			continue
		}
		// s.pending is ascending by LSN and holds every ref's frame.
		i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].lsn >= ref.lsn })
		if i == len(s.pending) || s.pending[i].lsn != ref.lsn {
			s.mu.Unlock()
			return nil, false, nil
		}
		parts = append(parts, part{ref.first, nil})
		frames = append(frames, s.pending[i])
	}
	head, exists := d.meta.Head, d.exists
	// Read while s.mu is held: a checkpoint that covers these frames
	// recycles their segments, which new frames then overwrite.
	payloads, rerr := s.journal.readFrames(frames)
	s.mu.Unlock()
	if rerr != nil {
		return nil, true, rerr
	}
	for i := range parts {
		parts[i].payload = payloads[i]
	}
	if err := s.usable(ctx); err != nil {
		return nil, true, err
	}
	if !exists {
		return nil, true, fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	if after > head {
		return nil, true, fmt.Errorf("%w: revision %d beyond head %d", ErrNotFound, after, head)
	}
	firstPending := head + 1 // every record is in bbolt when no pending frame appends any
	if len(parts) > 0 {
		firstPending = parts[0].first
	}
	if after+1 < firstPending {
		err := s.view(ctx, func(tx *bolt.Tx) error {
			v, err := openDoc(tx, doc)
			if err != nil {
				return err
			}
			out, err = v.records(after+1, firstPending-1, limit)
			return err
		})
		if err != nil {
			return nil, true, err
		}
		if len(out) < limit && uint64(len(out)) != firstPending-1-after {
			return nil, true, fmt.Errorf("%w: %q: %d records after %d in the file, want %d", ErrCorrupt, doc, len(out), after, firstPending-1-after)
		}
	}
	// Skip the frames whose records all lie at or below after: part i
	// holds the revisions from its first up to the next part's first.
	start := sort.Search(len(parts), func(i int) bool { return parts[i].first > after+1 })
	for _, p := range parts[max(start-1, 0):] {
		if len(out) >= limit {
			break
		}
		writes, err := decodePayload(p.payload)
		if err != nil {
			return nil, true, err
		}
		for i := range writes {
			w := &writes[i]
			if w.doc != doc {
				continue
			}
			for j, v := range w.recs {
				rev := w.first + uint64(j)
				if rev <= after || len(out) >= limit {
					continue
				}
				r, err := decodeRecord(rev, v, true)
				if err != nil {
					return nil, true, err
				}
				out = append(out, r)
			}
		}
	}
	return out, true, nil
}

// barrierDoc makes sure every pending frame touching doc is in bbolt
// before a read of doc.
func (s *Bolt) barrierDoc(ctx context.Context, doc string) error {
	if s.journal == nil {
		return nil
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	d, ok := s.docs[doc]
	var last uint64
	if ok {
		last = d.last
	}
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.checkpoint(last)
}

// barrierAll makes sure every frame appended so far is in bbolt.
func (s *Bolt) barrierAll(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	var last uint64
	if n := len(s.pending); n > 0 {
		last = s.pending[n-1].lsn
	}
	s.mu.Unlock()
	if last == 0 {
		return nil
	}
	return s.checkpoint(last)
}

// closeJournal stops the loop, waits for the Commit in flight, checkpoints
// everything and closes the segment files.
func (s *Bolt) closeJournal() error {
	if s.journal == nil {
		return nil
	}
	close(s.stop)
	<-s.done
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	err := s.checkpoint(math.MaxUint64)
	return errors.Join(err, s.journal.close())
}

// JournalStats returns the journal's counters.
func (s *Bolt) JournalStats() JournalStats {
	s.mu.Lock()
	st := s.stats
	st.PendingFrames = len(s.pending)
	st.PendingBytes = s.pendingBytes
	s.mu.Unlock()
	if s.journal != nil {
		st.Segments = s.journal.segments()
	}
	return st
}

// Checkpoint applies every journal frame to bbolt now (a no-op without
// the journal).
func (s *Bolt) Checkpoint(ctx context.Context) error { return s.barrierAll(ctx) }
