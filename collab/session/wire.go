package session

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// wireError is the error of an ack: {code, message}, and with code gone
// the earliest revision still available.
type wireError struct {
	Code     contract.Code `json:"code"`
	Message  string        `json:"message"`
	Earliest uint64        `json:"earliest,omitempty"`
}

func (e *wireError) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code contract.Code, format string, args ...any) *wireError {
	return &wireError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errAck is the ack payload of a failure.
type errAck struct {
	OK    bool       `json:"ok"`
	Error *wireError `json:"error"`
}

// okAck is {ok:true}.
type okAck struct {
	OK bool `json:"ok"`
}

// revAck is {ok:true, rev}.
type revAck struct {
	OK  bool   `json:"ok"`
	Rev uint64 `json:"rev"`
}

// User is a member's display name and colour, as sent in members, doc:presence
// and doc:member.
type User struct {
	Name  string `json:"name"`
	Color string `json:"color"`
}

// Selection is one selected range, in code points at a revision.
type Selection struct {
	Anchor uint64 `json:"anchor"`
	Head   uint64 `json:"head"`
}

// memberInfo is one entry of a join ack's members.
type memberInfo struct {
	Client string      `json:"client"`
	User   User        `json:"user"`
	Sel    []Selection `json:"sel,omitempty"`
	Rev    *uint64     `json:"rev,omitempty"`
}

// recordJSON is a record as the wire shows it: in a join ack's ops.
type recordJSON struct {
	Rev    uint64          `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Client string          `json:"client"`
	Seq    uint64          `json:"seq"`
	User   string          `json:"user"`
	Time   time.Time       `json:"time"`
}

// opEvent is the doc:op broadcast: a record with its document.
type opEvent struct {
	Doc    string          `json:"doc"`
	Rev    uint64          `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Client string          `json:"client"`
	Seq    uint64          `json:"seq"`
	User   string          `json:"user"`
	Time   time.Time       `json:"time"`
}

func wireRecord(r storage.Record) recordJSON {
	return recordJSON{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, User: r.User, Time: r.Time.UTC()}
}

type presenceEvent struct {
	Doc    string      `json:"doc"`
	Client string      `json:"client"`
	User   User        `json:"user"`
	Rev    uint64      `json:"rev"`
	Sel    []Selection `json:"sel"`
}

type memberEvent struct {
	Doc    string `json:"doc"`
	Client string `json:"client"`
	User   User   `json:"user"`
	Joined bool   `json:"joined"`
}

type historyAck struct {
	OK   bool               `json:"ok"`
	Revs []storage.Revision `json:"revs"`
}

type revisionAck struct {
	OK   bool   `json:"ok"`
	Rev  uint64 `json:"rev"`
	Text string `json:"text"`
}

type diffAck struct {
	OK    bool      `json:"ok"`
	Diffs []ot.Diff `json:"diffs"`
}

// ---- requests -------------------------------------------------------------
//
// Each request type decodes itself (UnmarshalJSON) field by field, so that
// an error names the field and says what was expected. Unknown fields are
// ignored; null is the same as absent.

// rawFields is the first pass of every request: the fields as raw JSON.
// encoding/json matches names case-insensitively; that is harmless here.
type rawFields struct {
	Doc    json.RawMessage `json:"doc"`
	Client json.RawMessage `json:"client"`
	User   json.RawMessage `json:"user"`
	Rev    json.RawMessage `json:"rev"`
	Seq    json.RawMessage `json:"seq"`
	Op     json.RawMessage `json:"op"`
	Sel    json.RawMessage `json:"sel"`
	Before json.RawMessage `json:"before"`
	Limit  json.RawMessage `json:"limit"`
	From   json.RawMessage `json:"from"`
	To     json.RawMessage `json:"to"`
}

func decodeObject(b []byte, f *rawFields) error {
	if !isObject(b) {
		return errorf(contract.CodeBadRequest, "payload must be an object")
	}
	if err := json.Unmarshal(b, f); err != nil {
		return errorf(contract.CodeBadRequest, "payload: %v", err)
	}
	return nil
}

// JoinRequest is the doc:join payload.
type JoinRequest struct {
	Doc    string
	Client string
	User   *User   // nil when absent
	Rev    *uint64 // nil when absent: a first join
}

// UnmarshalJSON decodes and validates a doc:join payload.
func (r *JoinRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if r.Client, err = clientField(f.Client); err != nil {
		return err
	}
	if r.User, err = userField(f.User); err != nil {
		return err
	}
	if !absent(f.Rev) {
		v, err := intField(f.Rev, "rev", 0)
		if err != nil {
			return err
		}
		r.Rev = &v
	}
	return nil
}

// OpRequest is the doc:op payload.
type OpRequest struct {
	Doc    string
	Client string
	Seq    uint64
	Rev    uint64
	Op     json.RawMessage // a JSON array, checked by the hub
}

// UnmarshalJSON decodes and validates a doc:op payload.
func (r *OpRequest) UnmarshalJSON(b []byte) error { return decodeOp(b, r) }

// fromFields validates the fields of a doc:op payload into r.
func (r *OpRequest) fromFields(f *rawFields) error {
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if r.Client, err = clientField(f.Client); err != nil {
		return err
	}
	if r.Seq, err = requiredInt(f.Seq, "seq", 1); err != nil {
		return err
	}
	if r.Rev, err = requiredInt(f.Rev, "rev", 0); err != nil {
		return err
	}
	if absent(f.Op) {
		return errorf(contract.CodeBadRequest, `"op" is required`)
	}
	if f.Op[0] != '[' {
		return errorf(contract.CodeBadRequest, `"op" must be an array`)
	}
	r.Op = f.Op
	return nil
}

// PresenceRequest is the doc:presence payload.
type PresenceRequest struct {
	Doc string
	Rev uint64
	Sel []Selection
}

// UnmarshalJSON decodes and validates a doc:presence payload.
func (r *PresenceRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if r.Rev, err = requiredInt(f.Rev, "rev", 0); err != nil {
		return err
	}
	r.Sel, err = selField(f.Sel)
	return err
}

// selField decodes a "sel" array of {anchor, head}; absent is empty.
func selField(raw json.RawMessage) ([]Selection, error) {
	if absent(raw) {
		return []Selection{}, nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, errorf(contract.CodeBadRequest, `"sel" must be an array of {anchor, head}`)
	}
	if len(items) > contract.MaxSelections {
		return nil, errorf(contract.CodeTooLarge, `"sel" has %d ranges, at most %d allowed`, len(items), contract.MaxSelections)
	}
	sel := make([]Selection, len(items))
	var err error
	for i, it := range items {
		var sf struct {
			Anchor json.RawMessage `json:"anchor"`
			Head   json.RawMessage `json:"head"`
		}
		if !isObject(it) || json.Unmarshal(it, &sf) != nil || absent(sf.Anchor) || absent(sf.Head) {
			return nil, errorf(contract.CodeBadRequest, `"sel[%d]" must be {anchor, head}`, i)
		}
		if sel[i].Anchor, err = intField(sf.Anchor, fmt.Sprintf("sel[%d].anchor", i), 0); err != nil {
			return nil, err
		}
		if sel[i].Head, err = intField(sf.Head, fmt.Sprintf("sel[%d].head", i), 0); err != nil {
			return nil, err
		}
	}
	return sel, nil
}

// DocRequest is a payload with only {doc} (doc:leave).
type DocRequest struct {
	Doc string
}

// UnmarshalJSON decodes and validates a {doc} payload.
func (r *DocRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	r.Doc, err = docField(f.Doc)
	return err
}

// HistoryRequest is the doc:history payload.
type HistoryRequest struct {
	Doc    string
	Before uint64 // 0: from the head
	Limit  int    // 1 to contract.MaxHistoryLimit
}

// UnmarshalJSON decodes and validates a doc:history payload. A limit above
// contract.MaxHistoryLimit is lowered to it; 0 or absent means
// contract.DefaultHistoryLimit.
func (r *HistoryRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if !absent(f.Before) {
		if r.Before, err = intField(f.Before, "before", 0); err != nil {
			return err
		}
	}
	r.Limit = contract.DefaultHistoryLimit
	if !absent(f.Limit) {
		l, err := intField(f.Limit, "limit", 0)
		if err != nil {
			return err
		}
		switch {
		case l == 0:
		case l > contract.MaxHistoryLimit:
			r.Limit = contract.MaxHistoryLimit
		default:
			r.Limit = int(l)
		}
	}
	return nil
}

// RevRequest is a payload {doc, rev} (doc:revision, doc:restore).
type RevRequest struct {
	Doc string
	Rev uint64
}

// UnmarshalJSON decodes and validates a {doc, rev} payload.
func (r *RevRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	r.Rev, err = requiredInt(f.Rev, "rev", 0)
	return err
}

// DiffRequest is the doc:diff payload.
type DiffRequest struct {
	Doc      string
	From, To uint64
}

// UnmarshalJSON decodes and validates a doc:diff payload.
func (r *DiffRequest) UnmarshalJSON(b []byte) error {
	var f rawFields
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if absent(f.From) || absent(f.To) {
		return errorf(contract.CodeBadRequest, `"from" and "to" are required`)
	}
	if r.From, err = intField(f.From, "from", 0); err != nil {
		return err
	}
	r.To, err = intField(f.To, "to", 0)
	return err
}

// ---- field parsers ---------------------------------------------------------

func absent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func docField(raw json.RawMessage) (string, error) {
	if absent(raw) {
		return "", errorf(contract.CodeBadRequest, `"doc" is required`)
	}
	s, err := stringField(raw, "doc")
	if err != nil {
		return "", err
	}
	if !contract.ValidDocID(s) {
		return "", errorf(contract.CodeBadRequest, `"doc" must be `+contract.DocIDRule)
	}
	return s, nil
}

func clientField(raw json.RawMessage) (string, error) {
	if absent(raw) {
		return "", errorf(contract.CodeBadRequest, `"client" is required`)
	}
	s, err := stringField(raw, "client")
	if err != nil {
		return "", err
	}
	if s == "" || len(s) > contract.MaxClientIDBytes {
		return "", errorf(contract.CodeBadRequest, `"client" must be 1 to %d bytes`, contract.MaxClientIDBytes)
	}
	return s, nil
}

func userField(raw json.RawMessage) (*User, error) {
	if absent(raw) {
		return nil, nil
	}
	var f struct {
		Name  json.RawMessage `json:"name"`
		Color json.RawMessage `json:"color"`
	}
	if !isObject(raw) || json.Unmarshal(raw, &f) != nil {
		return nil, errorf(contract.CodeBadRequest, `"user" must be an object {name, color}`)
	}
	u := &User{}
	var err error
	if !absent(f.Name) {
		if u.Name, err = stringField(f.Name, "user.name"); err != nil {
			return nil, err
		}
		if n := utf8.RuneCountInString(u.Name); n > contract.MaxUserNameRunes {
			return nil, errorf(contract.CodeBadRequest, `"user.name" has %d code points, at most %d allowed`, n, contract.MaxUserNameRunes)
		}
		for _, c := range u.Name {
			if unicode.IsControl(c) {
				return nil, errorf(contract.CodeBadRequest, `"user.name" must not contain control characters`)
			}
		}
	}
	if !absent(f.Color) {
		if u.Color, err = stringField(f.Color, "user.color"); err != nil {
			return nil, err
		}
		if !validColor(u.Color) {
			return nil, errorf(contract.CodeBadRequest, `"user.color" must be a CSS hex colour #rgb or #rrggbb`)
		}
	}
	return u, nil
}

func validColor(c string) bool {
	if len(c) != 4 && len(c) != 7 || c[0] != '#' {
		return false
	}
	for i := 1; i < len(c); i++ {
		switch x := c[i]; {
		case '0' <= x && x <= '9', 'a' <= x && x <= 'f', 'A' <= x && x <= 'F':
		default:
			return false
		}
	}
	return true
}

// stringField decodes a JSON string, refusing other types, invalid UTF-8 and
// escaped lone surrogates (which encoding/json would silently turn into
// U+FFFD).
func stringField(raw json.RawMessage, name string) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errorf(contract.CodeBadRequest, "%q must be a string", name)
	}
	if !utf8.Valid(raw) {
		return "", errorf(contract.CodeBadRequest, "%q is not valid UTF-8", name)
	}
	if !hasEscape(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	if !escapesWellFormed(raw) {
		return "", errorf(contract.CodeBadRequest, "%q contains a lone surrogate escape", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(contract.CodeBadRequest, "%q must be a string", name)
	}
	return s, nil
}

func hasEscape(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' {
			return true
		}
	}
	return false
}

// escapesWellFormed reports whether every \uXXXX surrogate escape in the JSON
// string raw is part of a high-low pair.
func escapesWellFormed(raw []byte) bool {
	highPending := false
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			if highPending {
				return false
			}
			continue
		}
		if i+1 >= len(raw) {
			return false
		}
		if raw[i+1] != 'u' {
			if highPending {
				return false
			}
			i++
			continue
		}
		if i+6 > len(raw) {
			return false
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		if err != nil {
			return false
		}
		switch {
		case v >= 0xD800 && v < 0xDC00:
			if highPending {
				return false
			}
			highPending = true
		case v >= 0xDC00 && v < 0xE000:
			if !highPending {
				return false
			}
			highPending = false
		default:
			if highPending {
				return false
			}
		}
		i += 5
	}
	return !highPending
}

// intField decodes a JSON integer in [min, 2^53-1], written without a sign,
// fraction or exponent.
// requiredInt is intField for a field that must be present.
func requiredInt(raw json.RawMessage, name string, min uint64) (uint64, error) {
	if absent(raw) {
		return 0, errorf(contract.CodeBadRequest, "%q is required", name)
	}
	return intField(raw, name, min)
}

func intField(raw json.RawMessage, name string, min uint64) (uint64, error) {
	bad := func() (uint64, error) {
		if min == 1 {
			return 0, errorf(contract.CodeBadRequest, "%q must be a positive integer", name)
		}
		return 0, errorf(contract.CodeBadRequest, "%q must be a non-negative integer", name)
	}
	if len(raw) == 0 || len(raw) > 16 {
		return bad()
	}
	var v uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return bad()
		}
		v = v*10 + uint64(c-'0')
	}
	if v < min || v > contract.MaxInteger {
		return bad()
	}
	return v, nil
}
