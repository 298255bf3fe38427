package main

import (
	"context"
	"errors"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/metrics"
	"github.com/collabd/collabd/storage"
)

// retentionPolicy is the server-wide policy of the --retain-* flags.
func (c *serveConfig) retentionPolicy() storage.Retention {
	return storage.Retention{KeepRevs: uint64(c.RetainRevisions), KeepFor: time.Duration(c.RetainDays) * 24 * time.Hour}
}

// retention is the background job that folds old ops (Hub.FoldAll) every
// --retention-interval, and the purge counter.
type retention struct {
	stop   chan struct{}
	done   chan struct{}
	purges *metrics.Counter
}

// startRetention registers the history metrics and starts the fold job.
// It runs even when the server's policy keeps everything: a document may
// have a policy of its own (PUT /api/docs/{id}/retention).
func (s *server) startRetention() {
	r := &retention{stop: make(chan struct{}), done: make(chan struct{})}
	s.retention = r
	if st := s.bolt; st != nil {
		s.reg.GaugeFunc("collabd_stored_bytes", "Bytes of the data file and its journal on disk.", func() float64 { return float64(st.StoredBytes()) })
		s.reg.CounterFunc("collabd_folded_revisions_total", "Revisions folded into snapshots by the retention policy since the start.", func() float64 {
			n, _ := st.FoldedRevisions()
			return float64(n)
		})
		s.reg.GaugeFunc("collabd_compactions", "Compactions of the data file (collabd compact, offline) over its life.", func() float64 {
			n, _ := st.Compactions()
			return float64(n)
		})
	}
	r.purges = s.reg.Counter("collabd_purges_total", "Documents deleted with their whole history (DELETE /api/docs/{id}, collabd purge) since the start.")
	interval := s.cfg.RetentionInterval
	log := s.log.With().Str("component", "retention").Logger()
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-r.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			start := time.Now()
			n, err := s.hub.FoldAll(ctx)
			cancel()
			switch {
			case err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, collab.ErrClosed):
				log.Error().Err(err).Uint64("folded", n).Msg("folding old ops")
			case n > 0:
				log.Info().Uint64("folded", n).Dur("took", time.Since(start)).Msg("folded old ops")
			}
		}
	}()
}

// stopRetention stops the fold job and waits for it (a fold in flight
// is cancelled between transactions).
func (s *server) stopRetention() {
	if s.retention == nil {
		return
	}
	select {
	case <-s.retention.stop:
	default:
		close(s.retention.stop)
	}
	<-s.retention.done
}

// purge deletes a document (the session's Delete, which also ends its
// memberships) and counts it.
func (s *server) purge(ctx context.Context, doc string) error {
	err := s.glue.svc.Delete(ctx, doc)
	if err == nil && s.retention != nil {
		s.retention.purges.Inc()
	}
	return err
}
