package storage

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Named versions and history retention on JetStream.
//
// Where things live:
//   - the list of a document's named versions (name, revision, who, when,
//     and the id of its text) is one key of the snapshot bucket,
//     "ver.<doc>": every change is a compare-and-set on that key's KV
//     revision (kv.Create / kv.Update), so two nodes naming a version at
//     once cannot both take one name;
//   - each version's text is an object of the object store
//     <SnapshotBucket>_versions, named "<doc>.<id>". A document may grow to
//     8 MiB (collab.DefaultMaxDocBytes), beyond what one KV value can hold
//     (NATS max_payload, 1 MiB by default): the object store chunks it. A
//     rename changes only the list; the text stays where it is;
//   - a document's own retention policy is the key "ret.<doc>";
//   - the fold horizon is an entry of the snapshot index (the snapshot at
//     the horizon, marked fold, with Meta.Created, whose message the fold
//     purges): every read already fetches the index, so knowing the
//     horizon costs no extra request.
//
// A fold stores the snapshot at the horizon H, records H in the index
// (compare-and-set, dropping the entries below H), then purges the
// subject's messages before the one holding H. That message stays, so the
// subject's last message, which appends compare-and-set against, is never
// purged, and the horizon's index entry always names a message that exists.

// objects returns the object store of version texts, creating it when
// create is set; (nil, nil) when it does not exist and create is not set.
func (s *JetStream) objects(ctx context.Context, create bool) (jetstream.ObjectStore, error) {
	bucket := s.cfg.SnapshotBucket + "_versions"
	obs, err := call(s, ctx, func(ctx context.Context) (jetstream.ObjectStore, error) { return s.js.ObjectStore(ctx, bucket) })
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		obs, err = call(s, ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
			obs, err := s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket: bucket, Description: "collabd named version texts",
				Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas,
			})
			if errors.Is(err, jetstream.ErrBucketExists) { // another node was first
				obs, err = s.js.ObjectStore(ctx, bucket)
			}
			return obs, err
		})
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: object store %s: %w", bucket, err)
	}
	return obs, nil
}

func versionListKey(doc string) string    { return "ver." + encodeDoc(doc) }
func retentionKey(doc string) string      { return "ret." + encodeDoc(doc) }
func versionObject(doc, id string) string { return encodeDoc(doc) + "." + id }

// storedVersion is one entry of a document's version list.
type storedVersion struct {
	Version
	id string // names the text's object
}

// Version list encoding: version byte, then per version uvarint length +
// name, uvarint rev, varint created (Unix ns), uvarint length + user,
// uvarint length + text id.
const verListV1 = 1

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVersionList(list []storedVersion) []byte {
	b := []byte{verListV1}
	for _, v := range list {
		b = appendStr(b, v.Name)
		b = binary.AppendUvarint(b, v.Rev)
		b = binary.AppendVarint(b, v.Created.UnixNano())
		b = appendStr(b, v.User)
		b = appendStr(b, v.id)
	}
	return b
}

func decodeVersionList(val []byte) ([]storedVersion, error) {
	if len(val) == 0 || val[0] != verListV1 {
		return nil, fmt.Errorf("%w: version list: unknown format", ErrCorrupt)
	}
	d := decoder{b: val[1:]}
	var out []storedVersion
	for len(d.b) > 0 && d.err == nil {
		var v storedVersion
		v.Name = d.str()
		v.Rev = d.uvarint()
		v.Created = time.Unix(0, d.varint()).UTC()
		v.User = d.str()
		v.id = d.str()
		out = append(out, v)
	}
	if d.err != nil {
		return nil, fmt.Errorf("version list: %w", d.err)
	}
	return out, nil
}

// versionList returns doc's versions and the KV revision of the list (0:
// no list).
func (s *JetStream) versionList(ctx context.Context, doc string) ([]storedVersion, uint64, error) {
	e, err := s.kvGet(ctx, versionListKey(doc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage: %q: versions: %w", doc, err)
	}
	list, err := decodeVersionList(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("%q: %w", doc, err)
	}
	return list, e.Revision(), nil
}

// errListChanged: the list changed between its read and the
// compare-and-set; the caller reads it again.
var errListChanged = errors.New("version list changed")

// putVersionList replaces the list read at KV revision kvRev.
func (s *JetStream) putVersionList(ctx context.Context, doc string, list []storedVersion, kvRev uint64) error {
	v := appendVersionList(list)
	var err error
	if kvRev == 0 {
		_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Create(ctx, versionListKey(doc), v) })
	} else {
		_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Update(ctx, versionListKey(doc), v, kvRev) })
	}
	if isWrongLastSeq(err) || errors.Is(err, jetstream.ErrKeyExists) {
		return errListChanged
	}
	if err != nil {
		return fmt.Errorf("storage: %q: versions: %w", doc, err)
	}
	return nil
}

// editVersions applies edit to doc's list with a compare-and-set,
// reading the list again (a bounded number of times) when another node
// changed it meanwhile. edit returns the new list or an error that ends
// the edit.
func (s *JetStream) editVersions(ctx context.Context, doc string, edit func([]storedVersion) ([]storedVersion, error)) error {
	for attempt := range 16 {
		// A replica behind the leader may answer the read (KV gets are
		// direct): wait a little before reading again.
		if attempt > 0 && !sleepBackoff(ctx, attempt) {
			return ctx.Err()
		}
		list, kvRev, err := s.versionList(ctx, doc)
		if err != nil {
			return err
		}
		list, err = edit(list)
		if err != nil {
			return err
		}
		if err = s.putVersionList(ctx, doc, list, kvRev); !errors.Is(err, errListChanged) {
			return err
		}
	}
	return fmt.Errorf("storage: %q: versions: too many concurrent changes", doc)
}

func findVersion(list []storedVersion, name string) int {
	return slices.IndexFunc(list, func(v storedVersion) bool { return v.Name == name })
}

// PutVersion names revision v.Rev (1 to the head) of doc v.Name and keeps
// the text at that revision with it: the text is stored first, then the
// name is added to the list with a compare-and-set. ErrExists when the
// name is taken (also when another node took it meanwhile: exactly one of
// the racers succeeds), ErrNotFound when the document or the revision does
// not exist, ErrInvalid for a bad name.
func (s *JetStream) PutVersion(ctx context.Context, doc string, v Version) error {
	if err := s.check(ctx, doc); err != nil {
		return err
	}
	if err := validVersionName(v.Name); err != nil {
		return err
	}
	if v.Rev == 0 {
		return fmt.Errorf("%w: a version names a revision from 1", ErrInvalid)
	}
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return err
	}
	if findVersion(list, v.Name) >= 0 {
		return fmt.Errorf("%w: version %q of %q", ErrExists, v.Name, doc)
	}
	text, err := s.textAt(ctx, doc, v.Rev)
	if err != nil {
		return err
	}
	obs, err := s.objects(ctx, true)
	if err != nil {
		return err
	}
	var idb [12]byte
	crand.Read(idb[:])
	sv := storedVersion{Version: v, id: hex.EncodeToString(idb[:])}
	sv.Created = sv.Created.UTC()
	obj := versionObject(doc, sv.id)
	if _, err := call(s, ctx, func(ctx context.Context) (*jetstream.ObjectInfo, error) {
		return obs.PutBytes(ctx, obj, appendSnapshot(nil, text))
	}); err != nil {
		return fmt.Errorf("storage: %q: version %q text: %w", doc, v.Name, err)
	}
	err = s.editVersions(ctx, doc, func(list []storedVersion) ([]storedVersion, error) {
		if findVersion(list, v.Name) >= 0 {
			return nil, fmt.Errorf("%w: version %q of %q", ErrExists, v.Name, doc)
		}
		return append(list, sv), nil
	})
	if err != nil {
		s.deleteObject(ctx, obs, obj) // best effort: an orphan text is only wasted space
		return err
	}
	// A delete of the document on another node may have removed the list
	// between our read and our compare-and-set, which then created it
	// afresh: take the name back rather than leave it on a deleted
	// document. (A delete and a new log as long as v.Rev in that window
	// still go unnoticed.)
	if pos, _, err := s.last(ctx, doc); err == nil && pos.head < v.Rev {
		return errors.Join(fmt.Errorf("%w: %q was deleted while naming a version", ErrNotFound, doc),
			s.DeleteVersion(ctx, doc, v.Name))
	}
	return nil
}

func (s *JetStream) deleteObject(ctx context.Context, obs jetstream.ObjectStore, name string) error {
	_, err := call(s, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, obs.Delete(ctx, name) })
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}

// RenameVersion gives doc's version from the name to (ErrNotFound when
// there is no from, ErrExists when to is taken).
func (s *JetStream) RenameVersion(ctx context.Context, doc, from, to string) (Version, error) {
	if err := s.check(ctx, doc); err != nil {
		return Version{}, err
	}
	if err := validVersionName(to); err != nil {
		return Version{}, err
	}
	var out Version
	err := s.editVersions(ctx, doc, func(list []storedVersion) ([]storedVersion, error) {
		i := findVersion(list, from)
		if i < 0 {
			return nil, fmt.Errorf("%w: version %q of %q", ErrNotFound, from, doc)
		}
		out = list[i].Version
		if from == to {
			return list, nil
		}
		if findVersion(list, to) >= 0 {
			return nil, fmt.Errorf("%w: version %q of %q", ErrExists, to, doc)
		}
		list[i].Name = to
		out.Name = to
		return list, nil
	})
	return out, err
}

// DeleteVersion removes doc's version name (ErrNotFound when there is
// none), then its text.
func (s *JetStream) DeleteVersion(ctx context.Context, doc, name string) error {
	if err := s.check(ctx, doc); err != nil {
		return err
	}
	var gone storedVersion
	err := s.editVersions(ctx, doc, func(list []storedVersion) ([]storedVersion, error) {
		i := findVersion(list, name)
		if i < 0 {
			return nil, fmt.Errorf("%w: version %q of %q", ErrNotFound, name, doc)
		}
		gone = list[i]
		return slices.Delete(list, i, i+1), nil
	})
	if err != nil {
		return err
	}
	obs, err := s.objects(ctx, false)
	if err != nil || obs == nil {
		return err
	}
	if err := s.deleteObject(ctx, obs, versionObject(doc, gone.id)); err != nil {
		return fmt.Errorf("storage: %q: version %q removed, its text not: %w", doc, name, err)
	}
	return nil
}

// Versions returns doc's named versions, newest revision first (by name
// within a revision); none for a document that has none or does not exist.
func (s *JetStream) Versions(ctx context.Context, doc string) ([]Version, error) {
	if err := s.check(ctx, doc); err != nil {
		return nil, err
	}
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(list))
	for _, v := range list {
		out = append(out, v.Version)
	}
	slices.SortFunc(out, func(a, b Version) int {
		if c := cmp.Compare(b.Rev, a.Rev); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// VersionText returns doc's version name with its text.
func (s *JetStream) VersionText(ctx context.Context, doc, name string) (Version, string, error) {
	if err := s.check(ctx, doc); err != nil {
		return Version{}, "", err
	}
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return Version{}, "", err
	}
	i := findVersion(list, name)
	if i < 0 {
		return Version{}, "", fmt.Errorf("%w: version %q of %q", ErrNotFound, name, doc)
	}
	text, err := s.versionText(ctx, doc, list[i])
	return list[i].Version, text, err
}

func (s *JetStream) versionText(ctx context.Context, doc string, v storedVersion) (string, error) {
	obs, err := s.objects(ctx, false)
	if err == nil && obs == nil {
		err = jetstream.ErrObjectNotFound
	}
	var b []byte
	// The object store answers reads from any replica: one behind may not
	// have a text named a moment ago on another node yet.
	for attempt := 0; err == nil && attempt < 4; attempt++ {
		if attempt > 0 && !sleepBackoff(ctx, attempt) {
			return "", ctx.Err()
		}
		b, err = call(s, ctx, func(ctx context.Context) ([]byte, error) { return obs.GetBytes(ctx, versionObject(doc, v.id)) })
		if !errors.Is(err, jetstream.ErrObjectNotFound) {
			break
		}
		err = nil
	}
	if err == nil && b == nil {
		err = jetstream.ErrObjectNotFound
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("%w: %q version %q: text missing", ErrCorrupt, doc, v.Name)
	}
	if err != nil {
		return "", fmt.Errorf("storage: %q: version %q text: %w", doc, v.Name, err)
	}
	return decodeSnapshot(v.Rev, b)
}

// foldedText returns the text of a revision below the fold horizon h: a
// named version keeps it, or it is gone.
func (s *JetStream) foldedText(ctx context.Context, doc string, rev, h uint64) (string, error) {
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return "", err
	}
	for _, v := range list {
		if v.Rev == rev {
			return s.versionText(ctx, doc, v)
		}
	}
	return "", &GoneError{Doc: doc, Rev: rev, Earliest: h}
}

// deleteHistory removes doc's versions (texts first, then the list) and
// its retention policy; deleteDoc calls it once the log is purged.
func (s *JetStream) deleteHistory(ctx context.Context, doc string) error {
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return err
	}
	if len(list) > 0 {
		obs, err := s.objects(ctx, false)
		if err != nil {
			return err
		}
		for _, v := range list {
			if obs == nil {
				break
			}
			if err := s.deleteObject(ctx, obs, versionObject(doc, v.id)); err != nil {
				return fmt.Errorf("storage: %q: delete version %q: %w", doc, v.Name, err)
			}
		}
	}
	for _, key := range []string{versionListKey(doc), retentionKey(doc)} {
		if err := s.kvPurge(ctx, key); err != nil {
			return fmt.Errorf("storage: %q: purge %s: %w", doc, key, err)
		}
	}
	return nil
}

// checkVersions verifies doc's version list: valid names, unique, and
// revisions 1 to the head. It does not read the texts.
func (s *JetStream) checkVersions(ctx context.Context, doc string, head uint64) error {
	list, _, err := s.versionList(ctx, doc)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if validVersionName(v.Name) != nil || seen[v.Name] || v.Rev == 0 || v.Rev > head || v.id == "" {
			return fmt.Errorf("%w: %q version %q: revision %d, head %d", ErrCorrupt, doc, v.Name, v.Rev, head)
		}
		seen[v.Name] = true
	}
	return nil
}

// Snapshot index with a fold horizon: version byte, uvarint horizon,
// varint Meta.Created (Unix ns), then the index as snapIndexV1 encodes it.
const snapIndexV2 = 2

// appendFoldHeader writes the fold header when idx has a horizon.
func appendFoldHeader(b []byte, idx []snapEntry) []byte {
	for _, e := range idx {
		if e.fold {
			b = append(b, snapIndexV2)
			b = binary.AppendUvarint(b, e.rev)
			return binary.AppendVarint(b, e.created)
		}
	}
	return b
}

func decodeFoldedIndex(v []byte) ([]snapEntry, error) {
	d := decoder{b: v[1:]}
	h, created := d.uvarint(), d.varint()
	if d.err != nil {
		return nil, fmt.Errorf("snapshot index: %w", d.err)
	}
	if len(d.b) > 0 && d.b[0] == snapIndexV2 {
		return nil, fmt.Errorf("%w: snapshot index: two fold headers", ErrCorrupt)
	}
	idx, err := decodeSnapIndex(d.b)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(idx, h, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
	if !found {
		return nil, fmt.Errorf("%w: snapshot index: no snapshot at the fold horizon %d", ErrCorrupt, h)
	}
	idx[i].fold, idx[i].created = true, created
	return idx, nil
}

// foldEntry returns the entry of the fold horizon. One beyond the head
// was left by a deleted incarnation of the document and is ignored.
func foldEntry(idx []snapEntry, head uint64) (snapEntry, bool) {
	for _, e := range idx {
		if e.fold && e.rev <= head {
			return e, true
		}
	}
	return snapEntry{}, false
}

// foldedAt returns the fold horizon (0: nothing folded).
func foldedAt(idx []snapEntry, head uint64) uint64 {
	e, _ := foldEntry(idx, head)
	return e.rev
}

// Reads racing a fold. A read fetches the index, then the messages from
// the stream sequence it names; a fold on another node may record a new
// horizon and purge those messages in between, and the read then finds a
// gap (ErrCorrupt). Such a read starts again from the index as it is
// then, as long as each gap comes with a higher horizon (at most
// foldRetries times); a gap with no fold behind it is returned.
const foldRetries = 8

// foldMoved reads doc's index after a gap and reports whether the
// horizon is above *h, which it updates.
func (s *JetStream) foldMoved(ctx context.Context, doc string, h *uint64) ([]snapEntry, bool) {
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return nil, false
	}
	now := foldedAt(idx, ^uint64(0))
	moved := now > *h
	*h = now
	return idx, moved
}

// scanFolded is scan for a read that needs the records lo to hi, from
// stream sequence from of an index read before: after a gap behind which
// a fold moved the horizon it answers *GoneError when the fold took lo,
// else scans again from the new index.
func (s *JetStream) scanFolded(ctx context.Context, doc string, from, lo, hi uint64) ([]Record, error) {
	var h uint64
	for attempt := 0; ; attempt++ {
		recs, err := s.scan(ctx, doc, from, lo, hi)
		if err == nil || !errors.Is(err, ErrCorrupt) || attempt == foldRetries {
			return recs, err
		}
		idx, moved := s.foldMoved(ctx, doc, &h)
		if !moved {
			return nil, err
		}
		if lo <= h {
			return nil, &GoneError{Doc: doc, Rev: lo - 1, Earliest: h}
		}
		from = startSeq(idx, lo)
	}
}

// textAtFolded is textAt, run again after a gap behind which a fold
// moved the horizon.
func (s *JetStream) textAtFolded(ctx context.Context, doc string, rev uint64) (string, error) {
	var h uint64
	for attempt := 0; ; attempt++ {
		text, err := s.textAt(ctx, doc, rev)
		if err == nil || !errors.Is(err, ErrCorrupt) || attempt == foldRetries {
			return text, err
		}
		if _, moved := s.foldMoved(ctx, doc, &h); !moved {
			return "", err
		}
	}
}

// Fold applies the retention policy p to doc at time now, as Bolt.Fold
// does: the new horizon H is the newest revision outside both of p's
// bounds; the text at H is stored as a snapshot (unless one is there), H
// is recorded in the snapshot index, and the subject's messages before the
// one holding H are purged, with the snapshots below H. Named versions
// keep their texts. Each step folds at most foldChunk revisions, so that
// the text at H is rebuilt from a bounded replay. It returns the new
// horizon (the old one when nothing was folded). Reads of folded
// revisions racing a fold may fail while the purge lands; reads of the
// revisions it keeps do not.
func (s *JetStream) Fold(ctx context.Context, doc string, p Retention, now time.Time) (uint64, error) {
	if err := s.check(ctx, doc); err != nil {
		return 0, err
	}
	var horizon uint64
	for raced := 0; ; {
		if err := s.usable(ctx); err != nil {
			return horizon, err
		}
		m, _, idx, ok, err := s.meta(ctx, doc)
		if err != nil || !ok {
			return horizon, err
		}
		horizon = m.Folded
		h, err := s.foldTarget(ctx, doc, m, idx, p, now)
		if err == nil && h > m.Folded {
			err = s.foldTo(ctx, doc, m, idx, h)
		}
		if err != nil && raced < 8 && s.foldedSince(ctx, doc, m.Folded) {
			// Another node folded meanwhile and purged what this step
			// was reading: start again from its horizon.
			raced++
			continue
		}
		if err != nil || h <= m.Folded {
			return horizon, err
		}
		horizon = h
	}
}

// foldedSince reports whether doc's horizon is now above h.
func (s *JetStream) foldedSince(ctx context.Context, doc string, h uint64) bool {
	_, moved := s.foldMoved(ctx, doc, &h)
	return moved
}

// foldTarget is the horizon p allows now, at most foldChunk revisions
// above the current one.
func (s *JetStream) foldTarget(ctx context.Context, doc string, m Meta, idx []snapEntry, p Retention, now time.Time) (uint64, error) {
	if p.KeepsAll() {
		return m.Folded, nil
	}
	limit := m.Head
	if p.KeepRevs > 0 {
		if limit <= m.Folded+p.KeepRevs {
			return m.Folded, nil
		}
		limit -= p.KeepRevs
	}
	limit = min(limit, m.Folded+foldChunk)
	if p.KeepFor <= 0 {
		return limit, nil
	}
	// The newest op older than the cutoff (ops are in time order: the
	// sequencer stamps them as it commits).
	recs, err := s.scan(ctx, doc, startSeq(idx, m.Folded+1), m.Folded+1, limit)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-p.KeepFor)
	h := m.Folded
	for _, r := range recs {
		if !r.Time.Before(cutoff) {
			break
		}
		h = r.Rev
	}
	return h, nil
}

// foldTo moves doc's horizon from m.Folded up to h.
func (s *JetStream) foldTo(ctx context.Context, doc string, m Meta, idx []snapEntry, h uint64) error {
	text, err := s.textAt(ctx, doc, h)
	if err != nil {
		return err
	}
	seq, err := s.locate(ctx, doc, startSeq(idx, h), h)
	if err != nil {
		return err
	}
	created := m.Created.UnixNano()
	if i, found := slices.BinarySearchFunc(idx, h, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) }); !found || idx[i].seq != seq {
		put := func(ctx context.Context) (uint64, error) {
			return s.kv.Put(ctx, snapKey(doc, h), appendSnapshot(nil, text))
		}
		if _, err := call(s, ctx, put); err != nil {
			return fmt.Errorf("storage: %q: snapshot %d: %w", doc, h, err)
		}
	}
	// Record the horizon, dropping the entries below it.
	var dropped []snapEntry
	for attempt := 0; ; attempt++ {
		if attempt == 16 {
			return fmt.Errorf("storage: %q: snapshot index: too many concurrent updates", doc)
		}
		cur, kvRev, err := s.snapIndex(ctx, doc)
		if err != nil {
			return err
		}
		if foldedAt(cur, m.Head) >= h {
			return nil // another node folded as far meanwhile
		}
		i, _ := slices.BinarySearchFunc(cur, h+1, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
		dropped = slices.DeleteFunc(slices.Clone(cur[:i]), func(e snapEntry) bool { return e.rev == h })
		next := append([]snapEntry{{rev: h, seq: seq, fold: true, created: created}}, cur[i:]...)
		v := appendSnapIndex(nil, next)
		if kvRev == 0 {
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Create(ctx, snapIndexKey(doc), v) })
		} else {
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Update(ctx, snapIndexKey(doc), v, kvRev) })
		}
		if err == nil {
			break
		}
		if !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("storage: %q: snapshot index: %w", doc, err)
		}
	}
	// A delete that raced the fold purged the message holding h: the
	// index just written belongs to no log. Leave none behind.
	if msg, err := s.getMsg(ctx, seq, s.subject(doc)); errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && msg.Sequence != seq) {
		s.kvPurge(ctx, snapIndexKey(doc))
		return fmt.Errorf("%w: %q was deleted while folding", ErrNotFound, doc)
	} else if err != nil {
		return fmt.Errorf("storage: %q: read: %w", doc, err)
	}
	purge := func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subject(doc)), jetstream.WithPurgeSequence(seq))
	}
	if _, err := call(s, ctx, purge); err != nil {
		return fmt.Errorf("storage: %q: purge below revision %d: %w", doc, h, err)
	}
	for _, e := range dropped {
		if err := s.kvPurge(ctx, snapKey(doc, e.rev)); err != nil {
			return fmt.Errorf("storage: %q: purge snapshot %d: %w", doc, e.rev, err)
		}
	}
	return nil
}

// FoldAll folds every document by its own policy (SetRetention) or def
// and returns how many revisions it folded. It walks List, one document
// at a time.
func (s *JetStream) FoldAll(ctx context.Context, def Retention, now time.Time) (uint64, error) {
	docs, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	var total uint64
	var errs []error
	for _, d := range docs {
		pol := def
		own, err := s.DocRetention(ctx, d.ID)
		if err == nil && own != nil {
			pol = *own
		}
		if err == nil && (pol.KeepsAll() || (pol.KeepRevs > 0 && d.Head <= d.Folded+pol.KeepRevs)) {
			continue // nothing to let go
		}
		var h uint64
		if err == nil {
			h, err = s.Fold(ctx, d.ID, pol, now)
		}
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return total, errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", d.ID, err))
			continue
		}
		if h > d.Folded {
			total += h - d.Folded
		}
	}
	return total, errors.Join(errs...)
}

// SetRetention stores doc's own retention policy (nil: doc follows the
// server's policy again). The document must exist; deleting it deletes
// its policy.
func (s *JetStream) SetRetention(ctx context.Context, doc string, p *Retention) error {
	if err := s.check(ctx, doc); err != nil {
		return err
	}
	if p != nil && p.KeepFor < 0 {
		return fmt.Errorf("%w: negative retention", ErrInvalid)
	}
	pos, _, err := s.last(ctx, doc)
	if err != nil {
		return err
	}
	if pos.head == 0 {
		return fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	if p == nil {
		return s.kvPurge(ctx, retentionKey(doc))
	}
	v := appendRetention(*p)
	_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Put(ctx, retentionKey(doc), v) })
	if err != nil {
		return fmt.Errorf("storage: %q: retention: %w", doc, err)
	}
	return nil
}

// DocRetention returns doc's own retention policy, nil when it follows
// the server's.
func (s *JetStream) DocRetention(ctx context.Context, doc string) (*Retention, error) {
	if err := s.check(ctx, doc); err != nil {
		return nil, err
	}
	e, err := s.kvGet(ctx, retentionKey(doc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %q: retention: %w", doc, err)
	}
	p, err := decodeRetention(e.Value())
	if err != nil {
		return nil, fmt.Errorf("%q: %w", doc, err)
	}
	return &p, nil
}

// backupStreams are the streams that hold everything this store keeps:
// the op log, the KV bucket of snapshots, versions lists, retention
// policies and fold horizons, and the object store of version texts.
func (s *JetStream) backupStreams() []string {
	return []string{s.cfg.Stream, "KV_" + s.cfg.SnapshotBucket, "OBJ_" + s.cfg.SnapshotBucket + "_versions"}
}
