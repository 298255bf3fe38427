package ot

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Diff is one segment of a diff in diff-match-patch form: Op is -1 (delete),
// 0 (equal) or 1 (insert). It marshals to the JSON array [op, text].
type Diff struct {
	Op   int
	Text string
}

// MarshalJSON encodes d as [op, text].
func (d Diff) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{d.Op, d.Text})
}

// UnmarshalJSON decodes [op, text]. Its errors match ErrInvalid.
func (d *Diff) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: diff segment: %w", ErrInvalid, err)
	}
	if len(raw) != 2 {
		return invalidf("diff segment needs 2 elements")
	}
	if err := json.Unmarshal(raw[0], &d.Op); err != nil {
		return fmt.Errorf("%w: diff segment: %w", ErrInvalid, err)
	}
	if err := json.Unmarshal(raw[1], &d.Text); err != nil {
		return fmt.Errorf("%w: diff segment: %w", ErrInvalid, err)
	}
	return nil
}

// diffTimeout bounds the time DiffTexts spends looking for a minimal diff;
// past it go-diff returns a valid but coarser one.
const diffTimeout = 2 * time.Second

// DiffTexts returns the semantically cleaned diff-match-patch diff of a and
// b: the Equal and Delete segments concatenated give a, the Equal and Insert
// segments give b. Segments split only between code points.
func DiffTexts(a, b string) []Diff {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = diffTimeout
	ds := dmp.DiffMain(a, b, false)
	ds = dmp.DiffCleanupSemantic(ds)
	out := make([]Diff, 0, len(ds))
	for _, d := range ds {
		op := 0
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = -1
		case diffmatchpatch.DiffInsert:
			op = 1
		}
		out = append(out, Diff{Op: op, Text: d.Text})
	}
	return out
}

// OpFromTexts returns a normalized op that turns a into b, built from
// DiffTexts(a, b) (a PUT of a whole text, a restore of an old revision).
func OpFromTexts(a, b string) Op {
	bl := NewBuilder()
	for _, d := range DiffTexts(a, b) {
		switch d.Op {
		case 0:
			bl.Retain(utf8.RuneCountInString(d.Text))
		case -1:
			bl.Delete(utf8.RuneCountInString(d.Text))
		case 1:
			bl.Insert(d.Text)
		}
	}
	return bl.Build()
}
