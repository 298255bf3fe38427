package session

import (
	"context"
	"encoding/json"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// The named-version events: doc:versions lists, doc:version reads one
// with its text (view access); doc:version:create, doc:version:rename and
// doc:version:delete need edit access (no membership: a token that may
// edit the document suffices, as for the HTTP API). The author of a new
// version is the token's user, else the name the socket joined with.
//
// A change (create, rename, delete), by a socket or through the HTTP API
// (VersionChanged), is told to the document's members with a
// doc:versions:changed event: every member whose join was answered, on
// every socket but the one that made the change (its ack tells it). In
// cluster mode the change also goes out on the bus (a PeerVersions event),
// and the other nodes tell their own members of the document.

// VersionRequest is the payload {doc, name, rev?} of doc:version,
// doc:version:create and doc:version:delete; {doc, name, to} of
// doc:version:rename.
type VersionRequest struct {
	Doc  string
	Name string
	Rev  uint64 // doc:version:create: 0 or absent names the head
	To   string // doc:version:rename: the new name
}

type versionFields struct {
	Doc  json.RawMessage `json:"doc"`
	Name json.RawMessage `json:"name"`
	Rev  json.RawMessage `json:"rev"`
	To   json.RawMessage `json:"to"`
}

// UnmarshalJSON decodes and validates the payload: doc and name are
// required; rev and to are checked when present.
func (r *VersionRequest) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return errorf(contract.CodeBadRequest, "payload must be an object")
	}
	var f versionFields
	if err := json.Unmarshal(b, &f); err != nil {
		return errorf(contract.CodeBadRequest, "payload: %v", err)
	}
	var err error
	if r.Doc, err = docField(f.Doc); err != nil {
		return err
	}
	if r.Name, err = versionNameField(f.Name, "name"); err != nil {
		return err
	}
	if !absent(f.Rev) {
		if r.Rev, err = intField(f.Rev, "rev", 0); err != nil {
			return err
		}
	}
	if !absent(f.To) {
		if r.To, err = versionNameField(f.To, "to"); err != nil {
			return err
		}
	}
	return nil
}

func versionNameField(raw json.RawMessage, field string) (string, error) {
	if absent(raw) {
		return "", errorf(contract.CodeBadRequest, "%q is required", field)
	}
	s, err := stringField(raw, field)
	if err != nil {
		return "", err
	}
	if !contract.ValidVersionName(s) {
		return "", errorf(contract.CodeBadRequest, "%q must be %s", field, contract.VersionNameRule)
	}
	return s, nil
}

// The actions of a doc:versions:changed event.
const (
	VersionCreated = "create"
	VersionRenamed = "rename"
	VersionDeleted = "delete"
)

// versionsChangedEvent is the doc:versions:changed event.
type versionsChangedEvent struct {
	Doc    string `json:"doc"`
	Action string `json:"action"`
	// Name is the version's name before the change: the new version's,
	// the old name of a renamed one, the deleted one's.
	Name string `json:"name"`
	// Version is the version after the change; absent after a delete.
	Version *storage.Version `json:"version,omitempty"`
}

// VersionChanged tells the members of doc that one of its named versions
// changed: action is VersionCreated, VersionRenamed or VersionDeleted,
// name the version's name before the change, v the version after it (nil
// after a delete). The HTTP API calls it after a change it made; the
// socket events call it themselves. It does not block.
func (s *Service) VersionChanged(doc, action, name string, v *storage.Version) {
	s.versionsChanged(nil, doc, action, name, v)
}

// versionsChanged sends doc:versions:changed to every live member of doc
// but those on the socket skip (nil: none), and publishes the change to the
// other nodes, which may have members of doc when this node has none.
func (s *Service) versionsChanged(skip *sockets.Socket, doc, action, name string, v *storage.Version) {
	if s.peers != nil {
		c := &VersionChange{Action: action, Name: name}
		if v != nil {
			vc := *v
			c.Version = &vc
		}
		s.peers.Publish(PeerEvent{Kind: PeerVersions, Doc: doc, Change: c})
	}
	s.mu.Lock()
	d := s.docs[doc]
	s.mu.Unlock()
	if d == nil {
		return
	}
	enc, err := encodeEvent("doc:versions:changed", &versionsChangedEvent{Doc: doc, Action: action, Name: name, Version: v})
	if err != nil {
		s.log.Error().Err(err).Str("doc", doc).Msg("encoding doc:versions:changed")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.members {
		if m.live && m.conn.sock != skip {
			_ = m.conn.sock.SendEncoded(enc, false)
		}
	}
}

type versionsAck struct {
	OK       bool              `json:"ok"`
	Versions []storage.Version `json:"versions"`
}

type versionAck struct {
	OK      bool            `json:"ok"`
	Version storage.Version `json:"version"`
	Text    *string         `json:"text,omitempty"`
}

func (s *Service) onVersions(sock *sockets.Socket, req DocRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:versions", ack)
	s.query(sock, "doc:versions", req.Doc, ack, func(ctx context.Context) (any, error) {
		vs, err := s.hub.Versions(ctx, req.Doc)
		if err != nil {
			return nil, err
		}
		if vs == nil {
			vs = []storage.Version{}
		}
		return versionsAck{OK: true, Versions: vs}, nil
	})
}

func (s *Service) onVersion(sock *sockets.Socket, req VersionRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:version", ack)
	s.query(sock, "doc:version", req.Doc, ack, func(ctx context.Context) (any, error) {
		v, text, err := s.hub.VersionText(ctx, req.Doc, req.Name)
		if err != nil {
			return nil, err
		}
		return versionAck{OK: true, Version: v, Text: &text}, nil
	})
}

// versionWrite checks edit access and the op rate, then runs fn on a
// goroutine with the author's name and answers its result.
func (s *Service) versionWrite(sock *sockets.Socket, event, doc string, ack *sockets.Ack, fn func(ctx context.Context, user string) (any, error)) {
	c := s.connOf(sock)
	switch {
	case c == nil:
		s.fail(sock, event, ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	case c.id.access(doc) < AccessEdit:
		s.fail(sock, event, ack, errorf(contract.CodeForbidden, "no edit access to document %q", doc))
		return
	case !c.limiter.allow():
		s.fail(sock, event, ack, errorf(contract.CodeRateLimited, "too many ops (at most %g per second)", s.lim.OpsPerSecond))
		return
	}
	user := c.id.User
	if m := c.member(doc); user == "" && m != nil {
		user = m.user.Name
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.recoverTo(sock, event, ack)
		ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
		defer cancel()
		v, err := fn(ctx, user)
		if err != nil {
			s.fail(sock, event, ack, hubError(err))
			return
		}
		s.log.Debug().Str("sid", sock.ID()).Str("event", event).Str("doc", doc).Msg("version")
		_ = ack.Reply(v)
	}()
}

func (s *Service) onVersionCreate(sock *sockets.Socket, req VersionRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:version:create", ack)
	s.versionWrite(sock, "doc:version:create", req.Doc, ack, func(ctx context.Context, user string) (any, error) {
		v, err := s.hub.NameVersion(ctx, req.Doc, req.Name, req.Rev, user)
		if err != nil {
			return nil, err
		}
		s.versionsChanged(sock, req.Doc, VersionCreated, req.Name, &v)
		return versionAck{OK: true, Version: v}, nil
	})
}

func (s *Service) onVersionRename(sock *sockets.Socket, req VersionRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:version:rename", ack)
	if req.To == "" {
		s.fail(sock, "doc:version:rename", ack, errorf(contract.CodeBadRequest, `"to" is required`))
		return
	}
	s.versionWrite(sock, "doc:version:rename", req.Doc, ack, func(ctx context.Context, _ string) (any, error) {
		v, err := s.hub.RenameVersion(ctx, req.Doc, req.Name, req.To)
		if err != nil {
			return nil, err
		}
		s.versionsChanged(sock, req.Doc, VersionRenamed, req.Name, &v)
		return versionAck{OK: true, Version: v}, nil
	})
}

func (s *Service) onVersionDelete(sock *sockets.Socket, req VersionRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:version:delete", ack)
	s.versionWrite(sock, "doc:version:delete", req.Doc, ack, func(ctx context.Context, _ string) (any, error) {
		if err := s.hub.DeleteVersion(ctx, req.Doc, req.Name); err != nil {
			return nil, err
		}
		s.versionsChanged(sock, req.Doc, VersionDeleted, req.Name, nil)
		return okAckJSON, nil
	})
}
