package main

import (
	"encoding/json"
	"errors"
	"math"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/metrics"
	"github.com/collabd/collabd/sockets"
)

// glue is the session layer (collab/session) attached to the Socket.IO
// server: the wire contract's events over the hub.
type glue struct{ svc *session.Service }

// attachSession registers the document events on sio's namespace "/", with
// token authentication when authority is not nil, and presence across
// nodes through peers (nil on a single node).
func attachSession(sio *sockets.Server, hub *collab.Hub, authority *auth.Authority, peers session.Peers, cfg serveConfig, log zerolog.Logger) (*glue, error) {
	burst := int(math.Ceil(2 * cfg.OpsPerSecond))
	sc := session.Config{
		Hub: hub,
		Limits: session.Limits{
			OpsPerSecond:  cfg.OpsPerSecond,
			OpsBurst:      burst,
			DocsPerSocket: cfg.DocsPerSocket,
			MembersPerDoc: cfg.MembersPerDoc,
			MaxTextBytes:  cfg.MaxPayload,
		},
		Logger: log.With().Str("component", "session").Logger(),
		Peers:  peers,
	}
	if authority != nil {
		sc.Authenticate = func(raw json.RawMessage) (session.Identity, error) {
			return authenticate(authority, raw)
		}
	}
	svc, err := session.Attach(sio, sc)
	if err != nil {
		return nil, err
	}
	return &glue{svc: svc}, nil
}

// authenticate reads {token} from a CONNECT auth payload.
func authenticate(authority *auth.Authority, raw json.RawMessage) (session.Identity, error) {
	var p struct {
		Token string `json:"token"`
	}
	if len(raw) == 0 || string(raw) == "null" {
		return session.Identity{}, errors.New("missing token: connect with auth {token}")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return session.Identity{}, errors.New("auth must be an object {token}")
	}
	c, err := authority.Verify(p.Token)
	if err != nil {
		return session.Identity{}, err
	}
	var check func() error
	if r := authority.Revocations(); r != nil {
		check = func() error { return r.Check(c) }
	}
	return session.Identity{
		User:    c.User,
		Expires: c.Expires,
		Check:   check,
		Access: func(doc string) session.Access {
			switch c.Level(doc) {
			case auth.Edit:
				return session.AccessEdit
			case auth.View:
				return session.AccessView
			default:
				return session.AccessNone
			}
		},
	}, nil
}

func (g *glue) registerMetrics(r *metrics.Registry, apiErrs *metrics.Counter) {
	r.GaugeFunc("collabd_document_members", "Memberships of sockets in documents.", func() float64 { return float64(g.svc.Stats().Members) })
	r.GaugeFunc("collabd_documents_joined", "Documents with at least one member.", func() float64 { return float64(g.svc.Stats().Documents) })
	r.CounterFunc("collabd_socket_ops_total", "doc:op events acknowledged ok (resubmissions included).", func() float64 { return float64(g.svc.Stats().Ops) })
	r.CounterFunc("collabd_rate_limited_total", "Events refused with rate_limited.", func() float64 { return float64(g.svc.Stats().RateLimited) })
	r.CounterFunc("collabd_errors_total", "Error answers: Socket.IO error acks plus HTTP API errors.", func() float64 {
		return float64(g.svc.Stats().Errors + apiErrs.Value())
	})
}
