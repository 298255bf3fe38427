package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/collabd/collabd/internal/contract"
)

// Frame layout of the journal (little endian):
//
//	0  magic   uint32  frameMagic
//	4  crc     uint32  CRC-32C of bytes 8..28 and the payload
//	8  epoch   uint64  the journal's epoch (a new random value per read-write open)
//	16 lsn     uint64  log sequence number: +1 per frame
//	24 length  uint32  payload bytes
//	28 payload
//
// A frame is valid when the magic, the epoch and the CRC match and the
// payload fits in the segment. Zeroed space, torn writes and frames left
// by an earlier epoch (a recycled segment) all fail one of these checks.
const (
	frameMagic      = 0x4A4C4443 // "CDLJ"
	frameHeaderSize = 28
	// maxFramePayload bounds one Commit's encoding.
	maxFramePayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends a frame holding payload to b.
func appendFrame(b []byte, epoch, lsn uint64, payload []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b = append(b, payload...)
	putFrameHeader(b[start:], epoch, lsn)
	return b
}

// putFrameHeader fills the header of frame f, whose payload is in place
// after the header, and its CRC.
func putFrameHeader(f []byte, epoch, lsn uint64) {
	le := binary.LittleEndian
	le.PutUint32(f, frameMagic)
	le.PutUint64(f[8:], epoch)
	le.PutUint64(f[16:], lsn)
	le.PutUint32(f[24:], uint32(len(f)-frameHeaderSize))
	le.PutUint32(f[4:], crc32.Update(0, castagnoli, f[8:]))
}

// parseFrame decodes the frame at the start of b. ok is false when no
// valid frame of epoch starts there; n is the frame's size in bytes.
func parseFrame(b []byte, epoch uint64) (lsn uint64, payload []byte, n int, ok bool) {
	if len(b) < frameHeaderSize {
		return 0, nil, 0, false
	}
	le := binary.LittleEndian
	if le.Uint32(b) != frameMagic || le.Uint64(b[8:]) != epoch {
		return 0, nil, 0, false
	}
	size := le.Uint32(b[24:])
	if size > maxFramePayload || uint64(size) > uint64(len(b)-frameHeaderSize) {
		return 0, nil, 0, false
	}
	n = frameHeaderSize + int(size)
	if crc32.Update(0, castagnoli, b[8:n]) != le.Uint32(b[4:]) {
		return 0, nil, 0, false
	}
	return le.Uint64(b[16:]), b[frameHeaderSize:n], n, true
}

// jWrite is one Write decoded from a journal payload. Its record values
// are the bbolt encoding (appendRecord), sliced out of the payload.
type jWrite struct {
	doc      string
	del      bool
	first    uint64   // revision of recs[0]
	recs     [][]byte // record values, revisions first, first+1, ...
	created  time.Time
	updated  time.Time
	snap     *Snapshot
	snapText []byte // the snapshot text, sliced out of the payload
	head     *Snapshot
	headText []byte // the head snapshot's text, sliced out of the payload
}

// Payload flags of one write.
const (
	pwDelete   = 1
	pwSnapshot = 2
	// pwHead: a head snapshot follows the regular one. Frames written
	// before the head slot existed never set it, so they decode as they
	// did; a binary that predates it refuses a frame that sets it (the
	// unknown flag) rather than dropping the snapshot.
	pwHead = 4
)

const payloadV1 = 1

// appendPayload encodes a batch: version, uvarint count, then per write:
// uvarint length + id, flags byte, uvarint record count, [uvarint first
// revision, per record uvarint length + appendRecord value], [uvarint
// snapshot revision, uvarint length + text] when pwSnapshot, [uvarint head
// snapshot revision, uvarint length + text] when pwHead. The writes must have passed
// Commit's validation (records contiguous).
func appendPayload(b []byte, writes []Write) []byte {
	b = append(b, payloadV1)
	b = binary.AppendUvarint(b, uint64(len(writes)))
	for i := range writes {
		w := &writes[i]
		b = binary.AppendUvarint(b, uint64(len(w.Doc)))
		b = append(b, w.Doc...)
		var flags byte
		if w.Delete {
			flags |= pwDelete
		}
		if w.Snapshot != nil {
			flags |= pwSnapshot
		}
		if w.HeadSnapshot != nil {
			flags |= pwHead
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(len(w.Records)))
		if len(w.Records) > 0 {
			b = binary.AppendUvarint(b, w.Records[0].Rev)
			for j := range w.Records {
				r := &w.Records[j]
				b = binary.AppendUvarint(b, uint64(recordLen(r)))
				b = appendRecord(b, r)
			}
		}
		for _, sn := range [...]*Snapshot{w.Snapshot, w.HeadSnapshot} {
			if sn != nil {
				b = binary.AppendUvarint(b, sn.Rev)
				b = binary.AppendUvarint(b, uint64(len(sn.Text)))
				b = append(b, sn.Text...)
			}
		}
	}
	return b
}

// recordLen is len(appendRecord(nil, r)).
func recordLen(r *Record) int {
	return 1 + uvarintLen(r.Seq) + varintLen(r.Time.UnixNano()) + uvarintLen(uint64(r.Ins)) + uvarintLen(uint64(r.Del)) +
		uvarintLen(uint64(len(r.Client))) + len(r.Client) + uvarintLen(uint64(len(r.User))) + len(r.User) + len(r.Op)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// decodePayload decodes a batch. The returned writes alias p. It checks
// the ids, the flags (a delete carries nothing else) and that every record
// value decodes with an op, and never panics on any input. What it returns
// is applied with advanceMeta's checks, like any write.
func decodePayload(p []byte) ([]jWrite, error) {
	if len(p) == 0 || p[0] != payloadV1 {
		return nil, fmt.Errorf("%w: journal payload: unknown format", ErrCorrupt)
	}
	d := decoder{b: p[1:]}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: journal payload: %d writes in %d bytes", ErrCorrupt, n, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	out := make([]jWrite, 0, n)
	for range n {
		var w jWrite
		w.doc = d.str()
		if d.err != nil {
			return nil, d.err
		}
		if len(d.b) == 0 {
			return nil, fmt.Errorf("%w: journal payload: truncated", ErrCorrupt)
		}
		flags := d.b[0]
		d.b = d.b[1:]
		if flags&^(pwDelete|pwSnapshot|pwHead) != 0 {
			return nil, fmt.Errorf("%w: journal payload: flags %x", ErrCorrupt, flags)
		}
		w.del = flags&pwDelete != 0
		nr := d.uvarint()
		if d.err == nil && nr > uint64(len(d.b)) {
			d.err = fmt.Errorf("%w: journal payload: %d records in %d bytes", ErrCorrupt, nr, len(d.b))
		}
		if nr > 0 && d.err == nil {
			w.first = d.uvarint()
			if d.err == nil && w.first+nr < w.first {
				d.err = fmt.Errorf("%w: journal payload: revision overflow", ErrCorrupt)
			}
			w.recs = make([][]byte, 0, nr)
			for j := range nr {
				v := d.bytes()
				if d.err != nil {
					break
				}
				r, _, _, _, err := viewRecord(w.first+j, v)
				if err != nil {
					return nil, err
				}
				if j == 0 {
					w.created = r.Time
				}
				w.updated = r.Time
				w.recs = append(w.recs, v)
			}
		}
		if flags&pwSnapshot != 0 {
			rev := d.uvarint()
			text := d.bytes()
			if d.err == nil {
				w.snap = &Snapshot{Rev: rev}
				w.snapText = text
			}
		}
		if flags&pwHead != 0 {
			rev := d.uvarint()
			text := d.bytes()
			if d.err == nil {
				w.head = &Snapshot{Rev: rev}
				w.headText = text
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		if !contract.ValidDocID(w.doc) || (w.del && (len(w.recs) > 0 || w.snap != nil || w.head != nil)) {
			return nil, fmt.Errorf("%w: journal payload: bad write for %q", ErrCorrupt, w.doc)
		}
		out = append(out, w)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: journal payload: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return out, nil
}

// bytes returns a length-prefixed byte slice of the buffer (aliasing it).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: bytes overrun value", ErrCorrupt)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// shape returns what the metadata rules need to know of w.
func (w *jWrite) shape() writeShape {
	s := writeShape{del: w.del, n: len(w.recs), first: w.first, created: w.created, updated: w.updated}
	if w.snap != nil {
		s.hasSnap, s.snapRev = true, w.snap.Rev
	}
	if w.head != nil {
		s.hasHead, s.headRev = true, w.head.Rev
	}
	return s
}
