package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/collabd/collabd/storage"
)

// restore queues the outbox's deliveries, in key (creation) order.
func (n *Notifier) restore() error {
	if n.cfg.Outbox == nil {
		return nil
	}
	entries, err := n.cfg.Outbox.Outbox(n.ctx)
	if err != nil {
		return fmt.Errorf("webhook: reading the outbox: %w", err)
	}
	var stale []string
	marks := map[string]uint64{}
	initialized := false
	for _, e := range entries {
		if e.Key == keyInit {
			initialized = true
			continue
		}
		if doc, ok := strings.CutPrefix(e.Key, markPrefix); ok {
			if rev, err := strconv.ParseUint(string(e.Value), 10, 64); err == nil {
				marks[doc] = rev
			}
			continue
		}
		if !strings.HasPrefix(e.Key, keyPrefix) {
			continue
		}
		if s, err := strconv.ParseUint(e.Key[len(keyPrefix):], 16, 64); err == nil && s > n.seq {
			n.seq = s
		}
		var d delivery
		if err := json.Unmarshal(e.Value, &d); err != nil {
			n.log.Error().Err(err).Str("key", e.Key).Msg("webhook: unreadable outbox entry dropped")
			stale = append(stale, e.Key)
			continue
		}
		d.key = e.Key
		t := n.target(d.URL)
		if t == nil {
			n.log.Warn().Str("url", d.URL).Str("event", d.Event.ID).Msg("webhook: pending delivery to a URL no longer configured dropped")
			stale = append(stale, e.Key)
			continue
		}
		t.queue = append(t.queue, &d)
	}
	if len(stale) > 0 {
		_ = n.cfg.Outbox.WriteOutbox(n.ctx, nil, stale)
	}
	return n.recover(marks, initialized)
}

// recover compares every document's head with the newest revision an
// event was queued for, and queues events for what a crash left
// unreported (the changes still inside their debounce): a change event
// from the mark to the head (created too when the mark was 0), and a
// deleted event for a marked document that is gone (or was deleted and
// written again: its head is below its mark). The first start with
// webhooks marks every document at its head and reports nothing.
func (n *Notifier) recover(marks map[string]uint64, initialized bool) error {
	docs, err := n.cfg.Outbox.List(n.ctx)
	if err != nil {
		return fmt.Errorf("webhook: listing the documents: %w", err)
	}
	if !initialized {
		put := []storage.OutboxEntry{{Key: keyInit, Value: []byte("1")}}
		for _, d := range docs {
			put = append(put, markEntry(d.ID, d.Head))
		}
		if err := n.cfg.Outbox.WriteOutbox(n.ctx, put, nil); err != nil {
			return fmt.Errorf("webhook: marking the documents: %w", err)
		}
		return nil
	}
	now := time.Now().UTC()
	var evs []Event
	seen := map[string]bool{}
	for _, d := range docs {
		seen[d.ID] = true
		mark := marks[d.ID]
		if d.Head < mark {
			evs = append(evs, Event{Type: TypeDeleted, Doc: d.ID, Time: now})
			mark = 0
		}
		if d.Head == mark {
			continue
		}
		s := &summary{from: mark + 1}
		for after := mark; after < d.Head; {
			recs, err := n.cfg.Outbox.Records(n.ctx, d.ID, after, 1000)
			if err != nil {
				return fmt.Errorf("webhook: reading %s: %w", d.ID, err)
			}
			if len(recs) == 0 {
				break
			}
			s.add(recs)
			after = recs[len(recs)-1].Rev
		}
		if s.created {
			evs = append(evs, Event{Type: TypeCreated, Doc: d.ID, FromRev: 1, ToRev: 1, Time: now})
		}
		if s.to >= s.from {
			evs = append(evs, Event{Type: TypeChanged, Doc: d.ID, FromRev: s.from, ToRev: s.to,
				Ops: s.ops, Ins: s.ins, Del: s.del, Authors: s.authors, Time: now})
		}
		n.log.Info().Str("doc", d.ID).Uint64("from", s.from).Uint64("to", s.to).Msg("webhook: changes left unreported by a crash queued")
	}
	for doc := range marks {
		if !seen[doc] {
			evs = append(evs, Event{Type: TypeDeleted, Doc: doc, Time: now})
		}
	}
	n.queueAtStart(evs)
	return nil
}

func markEntry(doc string, rev uint64) storage.OutboxEntry {
	return storage.OutboxEntry{Key: markPrefix + doc, Value: strconv.AppendUint(nil, rev, 10)}
}

// add folds recs into s.
func (s *summary) add(recs []storage.Record) {
	for i := range recs {
		r := &recs[i]
		s.to = r.Rev
		s.ops++
		s.ins += r.Ins
		s.del += r.Del
		j := slices.IndexFunc(s.authors, func(a Author) bool { return a.User == r.User })
		if j < 0 {
			s.authors = append(s.authors, Author{User: r.User})
			j = len(s.authors) - 1
		}
		s.authors[j].Ops++
		s.authors[j].Ins += r.Ins
		s.authors[j].Del += r.Del
		if r.Rev == 1 {
			s.created = true
		}
		if strings.HasPrefix(r.Client, restorePrefix) {
			s.restored = append(s.restored, r.Rev)
		}
	}
}
