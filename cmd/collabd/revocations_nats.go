package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/collabd/collabd/auth"
)

// revocationsBucket is the JetStream KV bucket that holds the token
// revocations of a cluster, one key per revoked token id ("jti.<id>") and
// per user with a not-before time ("user.<name>", the time as RFC 3339),
// names in unpadded base64url.
const revocationsBucket = "collabd_revocations"

func jtiKey(id string) string    { return "jti." + base64.RawURLEncoding.EncodeToString([]byte(id)) }
func userKey(user string) string { return "user." + base64.RawURLEncoding.EncodeToString([]byte(user)) }

// sharedRevocations keeps a node's revocation list equal to its cluster's.
// A revocation POSTed to one node is written to the bucket (share); every
// node watches the bucket and adds what appears there to its own list,
// then calls changed (which ends the access of the open connections it
// revokes). A revocation is never removed, and a user's not-before time
// only moves forward, in the bucket as in each list, so the order in
// which nodes see the writes does not matter.
type sharedRevocations struct {
	kv   jetstream.KeyValue
	list *auth.Revocations
	log  zerolog.Logger
	// watcher is the watch opened with the bucket; run's goroutine owns
	// it (and those after it) once started.
	watcher jetstream.KeyWatcher
	started bool
	restart chan struct{} // reconnected: watch anew
	done    chan struct{} // closed by stop
	wg      sync.WaitGroup
}

// openSharedRevocations creates, or binds to, the bucket, adds its content
// to list, and adds list's content (the node's own file, from before it
// joined the cluster) to the bucket. It retries until ctx ends while
// JetStream is not ready.
func openSharedRevocations(ctx context.Context, nc *nats.Conn, replicas int, list *auth.Revocations, log zerolog.Logger) (*sharedRevocations, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      revocationsBucket,
		Description: "collabd token revocations",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
	var kv jetstream.KeyValue
	for attempt := 1; ; attempt++ {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, revocationsBucket)
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("token revocations bucket %s: %w", revocationsBucket, err)
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		}
	}
	s := &sharedRevocations{kv: kv, list: list, log: log, restart: make(chan struct{}, 1), done: make(chan struct{})}
	own := list.List()
	// The watcher first delivers every key's value, then a nil entry,
	// then the writes that follow.
	if s.watcher, err = kv.WatchAll(context.Background()); err != nil {
		return nil, fmt.Errorf("token revocations: watch %s: %w", revocationsBucket, err)
	}
	inBucket := make(map[string]string) // key: value
	for initial := true; initial; {
		select {
		case e, ok := <-s.watcher.Updates():
			if !ok {
				return nil, errors.New("token revocations: the watch of the bucket ended")
			}
			if e == nil {
				initial = false
				continue
			}
			inBucket[e.Key()] = string(e.Value())
			s.apply(e)
		case <-ctx.Done():
			_ = s.watcher.Stop()
			return nil, fmt.Errorf("token revocations: reading %s: %w", revocationsBucket, ctx.Err())
		}
	}
	// Only what the bucket lacks: a restart writes nothing. (A user's
	// later time in the file than in the bucket is a write too.)
	missing := auth.RevocationList{Users: map[string]time.Time{}}
	for _, id := range own.IDs {
		if _, ok := inBucket[jtiKey(id)]; !ok {
			missing.IDs = append(missing.IDs, id)
		}
	}
	for user, t := range own.Users {
		if have, err := time.Parse(time.RFC3339Nano, inBucket[userKey(user)]); err != nil || have.Before(t) {
			missing.Users[user] = t
		}
	}
	if err := s.share(ctx, missing); err != nil {
		_ = s.watcher.Stop()
		return nil, fmt.Errorf("token revocations: adding this node's to %s: %w", revocationsBucket, err)
	}
	return s, nil
}

// run applies the bucket's writes as they come, calling changed after
// each burst, until stop. After a reconnection (reconnected) it watches
// the bucket anew, reading it whole again: nats.go's own watch notices a
// consumer lost with a restarted server only after missed heartbeats,
// about ten seconds in which other nodes' revocations would not hold here.
func (s *sharedRevocations) run(changed func()) {
	s.started = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w := s.watcher
		defer func() {
			if w != nil {
				_ = w.Stop()
			}
		}()
		for {
			var ok bool
			select {
			case <-s.done:
				return
			case <-s.restart:
			case e, open := <-w.Updates():
				if ok = open; ok {
					s.apply(e)
					// A POST of many ids is many writes: one changed
					// for all that arrived together.
					for more := true; more; {
						select {
						case e, open := <-w.Updates():
							if more = open; more {
								s.apply(e)
							}
						default:
							more = false
						}
					}
					changed()
				}
			}
			if ok {
				continue
			}
			// Reconnected, or the watch ended: watch anew.
			_ = w.Stop()
			if w = s.watch(); w == nil {
				return
			}
		}
	}()
}

// watch starts a new watch of the bucket, retrying with a backoff (while
// JetStream comes back, say); nil once stop was called.
func (s *sharedRevocations) watch() jetstream.KeyWatcher {
	for attempt := 1; ; attempt++ {
		w, err := s.kv.WatchAll(context.Background())
		if err == nil {
			return w
		}
		s.log.Warn().Err(err).Msg("watching the cluster's token revocations again; retrying")
		select {
		case <-s.done:
			return nil
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

// reconnected makes run watch the bucket anew; it does not block.
func (s *sharedRevocations) reconnected() {
	select {
	case s.restart <- struct{}{}:
	default:
	}
}

// stop ends the watch and waits for run's goroutine.
func (s *sharedRevocations) stop() {
	close(s.done)
	if !s.started {
		_ = s.watcher.Stop()
	}
	s.wg.Wait()
}

// apply adds one entry of the bucket to the node's list.
func (s *sharedRevocations) apply(e jetstream.KeyValueEntry) {
	if e == nil || e.Operation() != jetstream.KeyValuePut {
		return
	}
	kind, enc, _ := strings.Cut(e.Key(), ".")
	name, err := base64.RawURLEncoding.DecodeString(enc)
	switch {
	case err != nil:
	case kind == "jti":
		err = s.list.Revoke([]string{string(name)}, nil)
	case kind == "user":
		var t time.Time
		if t, err = time.Parse(time.RFC3339Nano, string(e.Value())); err == nil {
			err = s.list.Revoke(nil, map[string]time.Time{string(name): t})
		}
	default:
		err = errors.New("unknown key")
	}
	if err != nil {
		s.log.Error().Err(err).Str("key", e.Key()).Msg("token revocation from the cluster not applied")
	}
}

// share writes a change to the bucket: the token ids, and the users'
// not-before times unless the bucket already holds a later one (a
// compare-and-set, so that two nodes raising one user's time at once
// leave the later).
func (s *sharedRevocations) share(ctx context.Context, c auth.RevocationList) error {
	for _, id := range c.IDs {
		if _, err := s.kv.Put(ctx, jtiKey(id), nil); err != nil {
			return err
		}
	}
	for user, t := range c.Users {
		if err := s.raise(ctx, userKey(user), t); err != nil {
			return err
		}
	}
	return nil
}

// raise sets key to t unless it holds a later time.
func (s *sharedRevocations) raise(ctx context.Context, key string, t time.Time) error {
	val := []byte(t.UTC().Format(time.RFC3339Nano))
	for {
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.kv.Create(ctx, key, val)
		case err != nil:
			return err
		default:
			if have, perr := time.Parse(time.RFC3339Nano, string(e.Value())); perr == nil && !have.Before(t) {
				return nil
			}
			_, err = s.kv.Update(ctx, key, val, e.Revision())
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		// Another node wrote the key meanwhile: read it again.
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
