package storage

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Value encodings. Every value starts with a format version byte so that a
// later release can change the layout and still read old files.
const (
	recordV1 = 1
	metaV1   = 1
	snapV1   = 1
)

// recordOverhead bounds the bytes appendRecord adds to the client, user
// and op: the version byte and six varints.
const recordOverhead = 1 + 6*binary.MaxVarintLen64

// appendRecord encodes r (without its revision, which is the key):
// version, uvarint seq, varint unix nanoseconds, uvarint ins, uvarint del,
// uvarint len + client, uvarint len + user, then the op JSON to the end.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, recordV1)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	b = binary.AppendUvarint(b, uint64(r.Ins))
	b = binary.AppendUvarint(b, uint64(r.Del))
	b = binary.AppendUvarint(b, uint64(len(r.Client)))
	b = append(b, r.Client...)
	b = binary.AppendUvarint(b, uint64(len(r.User)))
	b = append(b, r.User...)
	return append(b, r.Op...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad uvarint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// str copies a length-prefixed string out of the buffer (bbolt memory must
// not outlive the transaction).
func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: string overruns value", ErrCorrupt)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeRecord decodes a log value. With withOp false the op bytes are not
// copied (history pages do not need them).
func decodeRecord(rev uint64, v []byte, withOp bool) (Record, error) {
	r, client, user, op, err := viewRecord(rev, v)
	if err != nil {
		return Record{}, err
	}
	r.Client, r.User = string(client), string(user)
	if withOp {
		r.Op = append([]byte(nil), op...)
	}
	return r, nil
}

// viewRecord checks a log value as decodeRecord does and decodes its
// numbers, without copying anything: client, user and op alias v. The
// checkpoint, which needs only the time, allocates nothing per record.
func viewRecord(rev uint64, v []byte) (r Record, client, user, op []byte, err error) {
	if len(v) == 0 || v[0] != recordV1 {
		return Record{}, nil, nil, nil, fmt.Errorf("%w: record %d: unknown format", ErrCorrupt, rev)
	}
	d := decoder{b: v[1:]}
	r.Rev = rev
	r.Seq = d.uvarint()
	r.Time = time.Unix(0, d.varint()).UTC()
	r.Ins = int(d.uvarint())
	r.Del = int(d.uvarint())
	client = d.bytes()
	user = d.bytes()
	if d.err != nil {
		return Record{}, nil, nil, nil, fmt.Errorf("record %d: %w", rev, d.err)
	}
	if len(d.b) == 0 {
		return Record{}, nil, nil, nil, fmt.Errorf("%w: record %d: empty op", ErrCorrupt, rev)
	}
	return r, client, user, d.b, nil
}

func appendMeta(b []byte, m *Meta) []byte {
	b = append(b, metaV1)
	b = binary.AppendUvarint(b, m.Head)
	b = binary.AppendVarint(b, m.Created.UnixNano())
	b = binary.AppendVarint(b, m.Updated.UnixNano())
	b = binary.AppendUvarint(b, m.SnapRev)
	if m.Folded > 0 {
		// Added after version 1 shipped: absent in older values, and the
		// time after it absent in some.
		b = binary.AppendUvarint(b, m.Folded)
		if !m.FoldedTime.IsZero() {
			b = binary.AppendVarint(b, m.FoldedTime.UnixNano())
		}
	}
	return b
}

func decodeMeta(v []byte) (Meta, error) {
	if len(v) == 0 || v[0] != metaV1 {
		return Meta{}, fmt.Errorf("%w: meta: unknown format", ErrCorrupt)
	}
	d := decoder{b: v[1:]}
	var m Meta
	m.Head = d.uvarint()
	m.Created = time.Unix(0, d.varint()).UTC()
	m.Updated = time.Unix(0, d.varint()).UTC()
	m.SnapRev = d.uvarint()
	if d.err == nil && len(d.b) > 0 {
		m.Folded = d.uvarint()
	}
	if d.err == nil && len(d.b) > 0 {
		m.FoldedTime = time.Unix(0, d.varint()).UTC()
	}
	if d.err != nil {
		return Meta{}, fmt.Errorf("meta: %w", d.err)
	}
	return m, nil
}

func appendSnapshot(b []byte, text string) []byte {
	b = append(b, snapV1)
	return append(b, text...)
}

// decodeSnapshot copies the snapshot text out of v. It does not validate
// the UTF-8 (Check does): the read path stays fast on large documents.
func decodeSnapshot(rev uint64, v []byte) (string, error) {
	if len(v) == 0 || v[0] != snapV1 {
		return "", fmt.Errorf("%w: snapshot %d: unknown format", ErrCorrupt, rev)
	}
	return string(v[1:]), nil
}

// appendHead appends the value of a head slot (bucketHead): the snapshot's
// revision (8 bytes, big endian), then its snapshot encoding.
func appendHead(b []byte, rev uint64, text string) []byte {
	b = binary.BigEndian.AppendUint64(b, rev)
	return appendSnapshot(b, text)
}
