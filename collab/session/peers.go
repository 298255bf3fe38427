package session

import (
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// Peers is the presence bus of a cluster: it carries the membership and
// presence of each node's local members to the other nodes serving the same
// documents, and the changes of their named versions (stored in the shared
// store; the bus only tells the members). Nothing on it is persisted, and
// nothing on it grants access: remote members are only shown to local
// members (doc:member, doc:presence and the members of a doc:join ack), a
// version change only told to them (doc:versions:changed). A nil Peers in
// Config is a single node.
//
// NATSPeers is the implementation over core NATS.
type Peers interface {
	// Watch starts delivering the events of doc's members on other nodes to
	// fn, and asks the other nodes for their current members of doc (they
	// arrive as PeerJoined events). Events of one node arrive in the order
	// that node published them; fn is never called with an event of this
	// node. fn runs on the implementation's goroutines, possibly several at
	// once; it must not block and must not call Watch or stop. stop ends
	// the delivery; it is idempotent.
	Watch(doc string, fn func(PeerEvent)) (stop func(), err error)
	// Publish sends ev, an event of a local member (or, for PeerJoined, the
	// answer to a PeerSync; for PeerVersions, a change made on this node),
	// to the other nodes watching ev.Doc. It must not block: the session
	// calls it with a document's lock held (but for PeerVersions), and the
	// events of one document go out in the order of the calls. ev.Node is
	// set by the implementation.
	Publish(ev PeerEvent)
}

// PeerEventKind says what a PeerEvent is.
type PeerEventKind uint8

// Kinds of PeerEvent.
const (
	// PeerJoined: Client joined Doc on Node, or (the answer to a PeerSync)
	// is a member there; Presence, when non-nil, is its last presence.
	PeerJoined PeerEventKind = iota + 1
	// PeerLeft: Client left Doc on Node.
	PeerLeft
	// PeerPresence: Client's presence on Node (Presence is non-nil).
	PeerPresence
	// PeerSync: Node asks for this node's members of Doc; the session
	// answers with a PeerJoined per live member.
	PeerSync
	// PeerNodeGone: Node stopped (a clean shutdown) or missed its
	// heartbeats: every member it had is gone. Client and Doc are empty
	// when the bus delivers it to a watch; it concerns every document.
	PeerNodeGone
	// PeerVersions: a named version of Doc was created, renamed or deleted
	// on Node (Change is non-nil; Client and User are empty). The session
	// tells its live members with doc:versions:changed.
	PeerVersions
)

func (k PeerEventKind) String() string {
	switch k {
	case PeerJoined:
		return "joined"
	case PeerLeft:
		return "left"
	case PeerPresence:
		return "presence"
	case PeerSync:
		return "sync"
	case PeerNodeGone:
		return "node-gone"
	case PeerVersions:
		return "versions"
	}
	return "unknown"
}

// PeerEvent is one event of the presence bus.
type PeerEvent struct {
	Kind     PeerEventKind
	Node     string // the node it comes from
	Doc      string
	Client   string
	User     User           // PeerJoined, PeerPresence
	Presence *Presence      // PeerPresence; optional in PeerJoined
	Change   *VersionChange // PeerVersions
}

// VersionChange is a change of a named version, the content of a
// doc:versions:changed event.
type VersionChange struct {
	Action string // VersionCreated, VersionRenamed or VersionDeleted
	// Name is the version's name before the change.
	Name string
	// Version is the version after the change; nil after a delete.
	Version *storage.Version
}

// Presence is a member's selection at a revision (doc:presence).
type Presence struct {
	Rev uint64
	Sel []Selection
}

// Bounds of what a peer may send.
const (
	// MaxNodeIDBytes bounds a node id on the bus; ids are 1 to 64 bytes
	// of A-Za-z0-9_- (readable in logs, a NATS subject token).
	MaxNodeIDBytes = 64
	// maxRemoteMembers bounds the remote members kept per document, so that
	// a misbehaving peer cannot grow a node's memory without bound.
	maxRemoteMembers = 4096
)

// ValidNodeID reports whether id is a usable node id: 1 to 64 bytes of
// A-Za-z0-9_-.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > MaxNodeIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// remoteMember is a member of a document on another node.
type remoteMember struct {
	node     string
	client   string
	user     User
	presence *presenceEvent // last presence, nil if none; replaced, never changed
}

// remoteSeen is what a joining member's ack listed of one remote member.
type remoteSeen struct {
	r        *remoteMember
	presence *presenceEvent
}

// watchPeers starts the document's watch of the presence bus. d.subMu must
// be held.
func (d *docState) watchPeers() {
	if d.svc.peers == nil || d.peerStop != nil {
		return
	}
	stop, err := d.svc.peers.Watch(d.id, d.onPeer)
	if err != nil {
		// Editing works without it; members of other nodes stay unseen.
		d.svc.log.Error().Err(err).Str("doc", d.id).Msg("watching the presence of other nodes")
		return
	}
	d.peerStop = stop
}

// unwatchPeers ends it. d.subMu must be held.
func (d *docState) unwatchPeers() {
	if d.peerStop != nil {
		d.peerStop()
		d.peerStop = nil
	}
}

// publish sends ev of a local member to the other nodes. d.mu must be held
// (that orders the events of one document).
func (d *docState) publish(kind PeerEventKind, m *member, pres *presenceEvent) {
	if d.svc.peers == nil {
		return
	}
	ev := PeerEvent{Kind: kind, Doc: d.id, Client: m.client, User: m.user}
	if pres != nil {
		ev.Presence = &Presence{Rev: pres.Rev, Sel: pres.Sel}
	}
	d.svc.peers.Publish(ev)
}

// onPeer applies an event of another node. It takes only d.mu and never
// blocks.
func (d *docState) onPeer(ev PeerEvent) {
	if err := checkPeerEvent(ev, d.id); err != nil {
		d.svc.log.Warn().Str("doc", d.id).Str("node", ev.Node).Str("kind", ev.Kind.String()).Err(err).Msg("peer event dropped")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	switch ev.Kind {
	case PeerSync:
		for _, m := range d.members {
			if m.live {
				d.publish(PeerJoined, m, m.presence)
			}
		}
	case PeerJoined:
		d.remoteJoined(ev)
	case PeerPresence:
		d.remoteJoined(ev) // a presence of an unknown member joins it
	case PeerLeft:
		if r := d.remote[ev.Client]; r != nil && r.node == ev.Node {
			delete(d.remote, ev.Client)
			d.announceRemoteLeft(r)
		}
	case PeerNodeGone:
		for client, r := range d.remote {
			if r.node == ev.Node {
				delete(d.remote, client)
				d.announceRemoteLeft(r)
			}
		}
	case PeerVersions:
		// Every live member: the socket that made the change is on the
		// other node (it has its ack there).
		enc, err := encodeEvent("doc:versions:changed", &versionsChangedEvent{Doc: d.id, Action: ev.Change.Action, Name: ev.Change.Name, Version: ev.Change.Version})
		if err != nil {
			d.svc.log.Error().Err(err).Str("doc", d.id).Msg("encoding doc:versions:changed")
			return
		}
		for _, m := range d.members {
			if m.live {
				_ = m.conn.sock.SendEncoded(enc, false)
			}
		}
	}
}

// remoteJoined records a member of another node (PeerJoined or
// PeerPresence) and tells the local members what is new. d.mu must be held.
func (d *docState) remoteJoined(ev PeerEvent) {
	r := d.remote[ev.Client]
	known := r != nil && r.node == ev.Node && r.user == ev.User
	if r == nil && len(d.remote) >= maxRemoteMembers {
		d.svc.log.Warn().Str("doc", d.id).Str("node", ev.Node).Str("client", ev.Client).Int("max", maxRemoteMembers).Msg("too many remote members; peer event dropped")
		return
	}
	if r == nil || r.node != ev.Node {
		// New, or the client moved to another node (the newest wins).
		r = &remoteMember{node: ev.Node, client: ev.Client}
		if d.remote == nil {
			d.remote = make(map[string]*remoteMember)
		}
		d.remote[ev.Client] = r
	}
	r.user = ev.User
	if !known {
		if enc, err := encodeEvent("doc:member", memberEvent{Doc: d.id, Client: r.client, User: r.user, Joined: true}); err == nil {
			d.sendRemote(r.client, enc)
		}
	}
	if ev.Presence != nil {
		r.presence = &presenceEvent{Doc: d.id, Client: r.client, User: r.user, Rev: ev.Presence.Rev, Sel: ev.Presence.Sel}
		if enc, err := encodeEvent("doc:presence", r.presence); err == nil {
			d.sendRemote(r.client, enc)
		}
	}
}

// unshadow announces r, a remote member hidden by a local one with its
// client id that just left. d.mu must be held.
func (d *docState) unshadow(r *remoteMember) {
	if enc, err := encodeEvent("doc:member", memberEvent{Doc: d.id, Client: r.client, User: r.user, Joined: true}); err == nil {
		d.sendRemote(r.client, enc)
	}
	if r.presence != nil {
		if enc, err := encodeEvent("doc:presence", r.presence); err == nil {
			d.sendRemote(r.client, enc)
		}
	}
}

// announceRemoteLeft tells the local members that r left. d.mu must be held.
func (d *docState) announceRemoteLeft(r *remoteMember) {
	if enc, err := encodeEvent("doc:member", memberEvent{Doc: d.id, Client: r.client, User: r.user, Joined: false}); err == nil {
		d.sendRemote(r.client, enc)
	}
}

// sendRemote sends enc, news of a remote member, to the live local
// members, unless a local member has the same client id. A joining member
// learns the news when it goes live (catchUpRemote). d.mu must be held.
func (d *docState) sendRemote(client string, enc *sockets.Encoded) {
	if d.members[client] != nil {
		return // shadowed by a local member with its client id
	}
	for _, m := range d.members {
		if m.live {
			_ = m.conn.sock.SendEncoded(enc, false)
		}
	}
}

// remoteInfo appends the remote members a joiner with client id self is
// shown in its ack, and returns what it listed (for catchUpRemote). d.mu
// must be held.
func (d *docState) remoteInfo(self string, out []memberInfo) ([]memberInfo, map[string]remoteSeen) {
	if len(d.remote) == 0 {
		return out, nil
	}
	seen := make(map[string]remoteSeen, len(d.remote))
	for client, r := range d.remote {
		if client == self || d.members[client] != nil {
			continue // shadowed by a local membership
		}
		mi := memberInfo{Client: client, User: r.user}
		if r.presence != nil {
			rev := r.presence.Rev
			mi.Sel, mi.Rev = r.presence.Sel, &rev
		}
		out = append(out, mi)
		seen[client] = remoteSeen{r: r, presence: r.presence}
	}
	return out, seen
}

// catchUpRemote sends m, going live, what changed among the remote members
// since its ack listed seen (events of other nodes reach only live
// members). d.mu must be held.
func (d *docState) catchUpRemote(m *member, seen map[string]remoteSeen) {
	send := func(name string, v any) {
		if enc, err := encodeEvent(name, v); err == nil {
			_ = m.conn.sock.SendEncoded(enc, false)
		}
	}
	for client, s := range seen {
		if r := d.remote[client]; r != s.r {
			send("doc:member", memberEvent{Doc: d.id, Client: client, User: s.r.user, Joined: false})
		}
	}
	for client, r := range d.remote {
		if client == m.client || d.members[client] != nil {
			continue
		}
		s, listed := seen[client]
		if !listed || s.r != r {
			send("doc:member", memberEvent{Doc: d.id, Client: client, User: r.user, Joined: true})
		}
		if r.presence != nil && (!listed || s.r != r || s.presence != r.presence) {
			send("doc:presence", r.presence)
		}
	}
}

// checkPeerEvent validates every field of an event of another node about
// doc; the bus has decoded it, the session checks it again before it
// reaches a socket.
func checkPeerEvent(ev PeerEvent, doc string) error {
	if !ValidNodeID(ev.Node) {
		return errorf(contract.CodeBadRequest, "bad node id")
	}
	if ev.Kind == PeerNodeGone {
		return nil
	}
	if ev.Doc != doc {
		return errorf(contract.CodeBadRequest, "event of another document")
	}
	switch ev.Kind {
	case PeerSync:
		return nil
	case PeerVersions:
		if ev.Client != "" || ev.Presence != nil {
			return errorf(contract.CodeBadRequest, "version change with member fields")
		}
		return checkVersionChange(ev.Change)
	case PeerJoined, PeerLeft, PeerPresence:
	default:
		return errorf(contract.CodeBadRequest, "unknown kind %d", ev.Kind)
	}
	if ev.Client == "" || len(ev.Client) > contract.MaxClientIDBytes || !utf8.ValidString(ev.Client) {
		return errorf(contract.CodeBadRequest, "bad client id")
	}
	if ev.Kind == PeerLeft {
		return nil
	}
	if err := checkPeerUser(ev.User); err != nil {
		return err
	}
	if ev.Kind == PeerPresence && ev.Presence == nil {
		return errorf(contract.CodeBadRequest, "presence without a selection")
	}
	if p := ev.Presence; p != nil {
		if p.Rev > contract.MaxInteger || len(p.Sel) > contract.MaxSelections || p.Sel == nil {
			return errorf(contract.CodeBadRequest, "bad presence")
		}
		for _, s := range p.Sel {
			if s.Anchor > contract.MaxInteger || s.Head > contract.MaxInteger {
				return errorf(contract.CodeBadRequest, "bad selection")
			}
		}
	}
	return nil
}

// checkPeerUser holds a remote member's user to what userFor makes of a
// local one: a name (a token's user may hold any code point) and a colour.
func checkPeerUser(u User) error {
	if u.Name == "" || !utf8.ValidString(u.Name) || utf8.RuneCountInString(u.Name) > contract.MaxUserNameRunes {
		return errorf(contract.CodeBadRequest, "bad user name")
	}
	if !validColor(u.Color) {
		return errorf(contract.CodeBadRequest, "bad user colour")
	}
	return nil
}

// checkVersionChange holds a version change of another node to what the
// hub makes of a local one: a known action, version names by
// contract.ValidVersionName (storage's rule), a version after a create or
// rename and none after a delete (a created one keeps its name), a
// revision from 1 (a version names a revision from 1), an author of at
// most contract.MaxUserNameRunes code points (empty when the token had
// none) and a time that encodes as JSON (RFC 3339: years 0 to 9999).
func checkVersionChange(c *VersionChange) error {
	if c == nil {
		return errorf(contract.CodeBadRequest, "version change without its content")
	}
	switch c.Action {
	case VersionCreated, VersionRenamed, VersionDeleted:
	default:
		return errorf(contract.CodeBadRequest, "unknown version action")
	}
	if !contract.ValidVersionName(c.Name) {
		return errorf(contract.CodeBadRequest, "bad version name")
	}
	v := c.Version
	if c.Action == VersionDeleted {
		if v != nil {
			return errorf(contract.CodeBadRequest, "a deleted version after its delete")
		}
		return nil
	}
	switch {
	case v == nil:
		return errorf(contract.CodeBadRequest, "version change without the version")
	case !contract.ValidVersionName(v.Name) || c.Action == VersionCreated && v.Name != c.Name:
		return errorf(contract.CodeBadRequest, "bad version name")
	case v.Rev == 0 || v.Rev > contract.MaxInteger:
		return errorf(contract.CodeBadRequest, "bad version revision")
	case !utf8.ValidString(v.User) || utf8.RuneCountInString(v.User) > contract.MaxUserNameRunes:
		return errorf(contract.CodeBadRequest, "bad version author")
	case v.Created.Year() < 0 || v.Created.Year() > 9999:
		return errorf(contract.CodeBadRequest, "bad version time")
	}
	return nil
}
