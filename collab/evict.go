package collab

import (
	"context"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// evictLoop evicts idle documents every quarter of the idle timeout until
// the hub closes.
func (h *Hub) evictLoop() {
	t := time.NewTicker(max(h.cfg.IdleTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.evictIdle(now)
		}
	}
}

// finalSnap is the last snapshot of an evicted document.
type finalSnap struct {
	id   string
	rev  uint64
	text ot.Text
}

// evictIdle removes from memory every document idle since before
// now-IdleTimeout that has nothing in flight and no subscriber, and writes
// the final snapshots in one commit. A document kept (subscribed) but idle
// for a quarter of IdleTimeout with nothing in flight drops its in-memory
// log. An evicted document that is used again
// is simply loaded again; the snapshot written meanwhile holds the same text
// it would rebuild.
func (h *Hub) evictIdle(now time.Time) {
	var snaps []finalSnap
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for id, d := range sh.docs {
			select {
			case <-d.ready:
			default:
				continue // loading
			}
			d.mu.Lock()
			idle := !d.gone && !d.deleting && !d.catching && d.head == d.committed && len(d.subs) == 0 &&
				now.Sub(d.lastUse) >= h.cfg.IdleTimeout
			if idle {
				d.gone = true
				delete(sh.docs, id)
				if d.committed > d.snapRev {
					snaps = append(snaps, finalSnap{id: id, rev: d.committed, text: d.committedText})
				}
			} else if d.head == d.committed && d.log != nil && now.Sub(d.lastUse) >= h.cfg.IdleTimeout/4 {
				// Quiet for a while (typically subscribed, so never
				// evicted): drop the log, a cache of the store.
				d.log = nil
			}
			d.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	h.writeSnapshots(context.Background(), snaps)
}

// writeSnapshots stores snaps in one commit: each into its document's head
// slot (replacing the one there), unless it falls on a regular snapshot's
// revision. A failure only costs replay time on the next load, so it is
// not reported further.
func (h *Hub) writeSnapshots(ctx context.Context, snaps []finalSnap) error {
	if len(snaps) == 0 {
		return nil
	}
	writes := make([]storage.Write, len(snaps))
	for i, s := range snaps {
		writes[i] = storage.Write{Doc: s.id}
		sn := &storage.Snapshot{Rev: s.rev, Text: s.text.String()}
		if snapshotKind(s.rev, uint64(h.cfg.SnapshotEvery)) == snapRegular {
			writes[i].Snapshot = sn
		} else {
			writes[i].HeadSnapshot = sn
		}
	}
	return storeError(h.store.Commit(ctx, writes))
}

// snapshotAll writes the final snapshot of every live document (at Close).
func (h *Hub) snapshotAll(ctx context.Context) error {
	var snaps []finalSnap
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for id, d := range sh.docs {
			select {
			case <-d.ready:
			default:
				continue
			}
			d.mu.Lock()
			if !d.gone && !d.deleting && d.committed > d.snapRev {
				snaps = append(snaps, finalSnap{id: id, rev: d.committed, text: d.committedText})
				d.snapRev = d.committed
			}
			d.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return h.writeSnapshots(ctx, snaps)
}
