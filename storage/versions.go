package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrExists: a named version of that name already exists.
var ErrExists = errors.New("storage: already exists")

// bucketVer holds the named versions: id 0x00 name -> version value. A
// name never holds a control character, so the zero byte after the id
// keeps documents apart as in the log bucket.
var bucketVer = []byte("ver")

const verV1 = 1

// Version is a named revision of a document. Its full text is stored with
// it, so it stays readable whatever happens to the log around it.
type Version struct {
	Name    string    `json:"name"`
	Rev     uint64    `json:"rev"`
	User    string    `json:"user"` // who named it
	Created time.Time `json:"time"` // when it was named
}

func verKey(doc, name string) []byte {
	b := make([]byte, 0, len(doc)+1+len(name))
	b = append(b, doc...)
	b = append(b, 0)
	return append(b, name...)
}

// appendVersion encodes v and the text: version byte, uvarint rev, varint
// created (Unix ns), uvarint length + user, then the text to the end.
func appendVersion(b []byte, v *Version, text string) []byte {
	b = append(b, verV1)
	b = binary.AppendUvarint(b, v.Rev)
	b = binary.AppendVarint(b, v.Created.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(v.User)))
	b = append(b, v.User...)
	return append(b, text...)
}

// decodeVersion decodes a version value; the text is copied only when
// withText is true.
func decodeVersion(name string, val []byte, withText bool) (Version, string, error) {
	if len(val) == 0 || val[0] != verV1 {
		return Version{}, "", fmt.Errorf("%w: version %q: unknown format", ErrCorrupt, name)
	}
	d := decoder{b: val[1:]}
	v := Version{Name: name}
	v.Rev = d.uvarint()
	v.Created = time.Unix(0, d.varint()).UTC()
	v.User = d.str()
	if d.err != nil {
		return Version{}, "", fmt.Errorf("version %q: %w", name, d.err)
	}
	var text string
	if withText {
		text = string(d.b)
	}
	return v, text, nil
}

func validVersionName(name string) error {
	if !contract.ValidVersionName(name) {
		return fmt.Errorf("%w: version names are %s", ErrInvalid, contract.VersionNameRule)
	}
	return nil
}

// update runs fn in a bbolt write transaction, for the rare writes that do
// not go through Commit (named versions). The document's pending journal
// frames are checkpointed first, so fn sees its logical state; a delete
// committed after that applies after fn and removes what fn wrote, as it
// should.
func (s *Bolt) update(ctx context.Context, doc string, fn func(*bolt.Tx) error) error {
	if err := s.barrierDoc(ctx, doc); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	s.directMu.Lock()
	defer s.directMu.Unlock()
	err := s.dbUpdate(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketVer); err != nil {
			return err
		}
		return fn(tx)
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// PutVersion names revision v.Rev (1 to the head) of doc v.Name and stores
// the text at that revision with it, in one synced bbolt transaction.
// ErrExists when the name is taken, ErrNotFound when the document or the
// revision does not exist, ErrInvalid for a bad name.
func (s *Bolt) PutVersion(ctx context.Context, doc string, v Version) error {
	if err := validDoc(doc); err != nil {
		return err
	}
	if err := validVersionName(v.Name); err != nil {
		return err
	}
	if v.Rev == 0 {
		return fmt.Errorf("%w: a version names a revision from 1", ErrInvalid)
	}
	return s.update(ctx, doc, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVer)
		k := verKey(doc, v.Name)
		if b.Get(k) != nil {
			return fmt.Errorf("%w: version %q of %q", ErrExists, v.Name, doc)
		}
		text, err := textAt(tx, doc, v.Rev)
		if err != nil {
			return err
		}
		return b.Put(k, appendVersion(nil, &v, text.String()))
	})
}

// RenameVersion gives doc's version from the name to.
func (s *Bolt) RenameVersion(ctx context.Context, doc, from, to string) (Version, error) {
	if err := validDoc(doc); err != nil {
		return Version{}, err
	}
	if err := validVersionName(to); err != nil {
		return Version{}, err
	}
	var out Version
	err := s.update(ctx, doc, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVer)
		val := b.Get(verKey(doc, from))
		if val == nil {
			return fmt.Errorf("%w: version %q of %q", ErrNotFound, from, doc)
		}
		if from == to {
			v, _, err := decodeVersion(from, val, false)
			out = v
			return err
		}
		if b.Get(verKey(doc, to)) != nil {
			return fmt.Errorf("%w: version %q of %q", ErrExists, to, doc)
		}
		v, _, err := decodeVersion(from, val, false)
		if err != nil {
			return err
		}
		v.Name = to
		val = bytes.Clone(val) // bbolt's memory is not ours to keep
		if err := b.Delete(verKey(doc, from)); err != nil {
			return err
		}
		out = v
		return b.Put(verKey(doc, to), val)
	})
	return out, err
}

// DeleteVersion removes doc's version name (ErrNotFound when there is none).
func (s *Bolt) DeleteVersion(ctx context.Context, doc, name string) error {
	if err := validDoc(doc); err != nil {
		return err
	}
	return s.update(ctx, doc, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVer)
		k := verKey(doc, name)
		if b.Get(k) == nil {
			return fmt.Errorf("%w: version %q of %q", ErrNotFound, name, doc)
		}
		return b.Delete(k)
	})
}

// Versions returns doc's named versions, newest revision first (by name
// within a revision); none for a document that has none or does not exist.
func (s *Bolt) Versions(ctx context.Context, doc string) ([]Version, error) {
	if err := validDoc(doc); err != nil {
		return nil, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return nil, err
	}
	var out []Version
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVer)
		if b == nil {
			return nil
		}
		prefix := docPrefix(doc)
		c := b.Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			v, _, err := decodeVersion(string(k[len(prefix):]), val, false)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Version) int {
		if a.Rev != b.Rev {
			if a.Rev > b.Rev {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, err
}

// VersionText returns doc's version name with its text.
func (s *Bolt) VersionText(ctx context.Context, doc, name string) (Version, string, error) {
	if err := validDoc(doc); err != nil {
		return Version{}, "", err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return Version{}, "", err
	}
	var v Version
	var text string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVer)
		var val []byte
		if b != nil {
			val = b.Get(verKey(doc, name))
		}
		if val == nil {
			return fmt.Errorf("%w: version %q of %q", ErrNotFound, name, doc)
		}
		var err error
		v, text, err = decodeVersion(name, val, true)
		return err
	})
	return v, text, err
}

// checkVersions verifies every retention policy (of an existing document)
// and every named version: its document exists, its revision is 1 to the
// head, its name is valid and its text is UTF-8.
func checkVersions(tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMeta)
	if rb := tx.Bucket(bucketRet); rb != nil {
		// Retention overrides: of existing documents, decodable.
		err := rb.ForEach(func(k, v []byte) error {
			if mb.Get(k) == nil {
				return fmt.Errorf("%w: retention policy of no document %q", ErrCorrupt, k)
			}
			_, err := decodeRetention(v)
			return err
		})
		if err != nil {
			return err
		}
	}
	b := tx.Bucket(bucketVer)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, val []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return fmt.Errorf("%w: version key %x", ErrCorrupt, k)
		}
		doc, name := string(k[:i]), string(k[i+1:])
		m, exists, err := storedMeta(mb, doc)
		if err != nil {
			return err
		}
		if !exists || !contract.ValidVersionName(name) {
			return fmt.Errorf("%w: version key %q of no document or with a bad name", ErrCorrupt, k)
		}
		v, text, err := decodeVersion(name, val, true)
		if err != nil {
			return err
		}
		if v.Rev == 0 || v.Rev > m.Head || !utf8.ValidString(text) {
			return fmt.Errorf("%w: %q version %q: revision %d, head %d", ErrCorrupt, doc, name, v.Rev, m.Head)
		}
		return nil
	})
}

// versionAt returns the text a named version of doc keeps for revision
// rev, if one does (the text of a folded revision is kept only there).
func versionAt(tx *bolt.Tx, doc string, rev uint64) (string, bool, error) {
	b := tx.Bucket(bucketVer)
	if b == nil {
		return "", false, nil
	}
	prefix := docPrefix(doc)
	c := b.Cursor()
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		v, _, err := decodeVersion(string(k[len(prefix):]), val, false)
		if err != nil {
			return "", false, err
		}
		if v.Rev == rev {
			_, text, err := decodeVersion(v.Name, val, true)
			return text, err == nil, err
		}
	}
	return "", false, nil
}
