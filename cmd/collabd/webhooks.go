package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/collabd/collabd/metrics"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/webhook"
)

// startWebhooks creates the notifier of --webhook-url (nil without one); it
// queues the deliveries left in the store's outbox by the previous run.
// Call it after the store is open and before the hub, whose commits feed it.
func (s *server) startWebhooks(cfg serveConfig) error {
	if len(cfg.WebhookURLs) == 0 {
		return nil
	}
	secret, err := readSecret("webhook-secret", cfg.WebhookSecret, cfg.WebhookSecretFile)
	if err != nil {
		return err
	}
	if secret == "" {
		return errors.New("--webhook-url needs --webhook-secret (deliveries are signed)")
	}
	latency := s.reg.Histogram("collabd_webhook_attempt_seconds", "Wall time of one webhook delivery attempt (request to answer).",
		metrics.ExponentialBuckets(0.005, 2, 12))
	wc := webhook.Config{
		URLs:        cfg.WebhookURLs,
		Secret:      secret,
		Outbox:      s.webhookOutbox(),
		Debounce:    cfg.WebhookDebounce,
		MaxWait:     cfg.WebhookMaxWait,
		MaxQueue:    cfg.WebhookMaxQueue,
		MaxAttempts: cfg.WebhookMaxAttempts,
		ObserveAttempt: func(took time.Duration, _ bool) {
			latency.Observe(took.Seconds())
		},
		Logger: s.log.With().Str("component", "webhook").Logger(),
	}
	if cfg.WebhookText {
		wc.Text = func(ctx context.Context, doc string, rev uint64) (string, error) {
			return s.hub.TextAt(ctx, doc, rev)
		}
	}
	n, err := webhook.New(wc)
	if err != nil {
		return fmt.Errorf("--webhook-url: %w", err)
	}
	s.webhooks = n
	r := s.reg
	r.CounterFunc("collabd_webhook_deliveries_total", "Webhook deliveries answered 2xx.", func() float64 { return float64(n.Stats().Delivered) })
	r.CounterFunc("collabd_webhook_failures_total", "Webhook delivery attempts that failed (error, timeout, non-2xx).", func() float64 { return float64(n.Stats().Failures) })
	r.CounterFunc("collabd_webhook_gave_up_total", "Webhook deliveries dropped after the last attempt.", func() float64 { return float64(n.Stats().GaveUp) })
	r.CounterFunc("collabd_webhook_dropped_total", "Webhook deliveries dropped because a URL's queue was full.", func() float64 { return float64(n.Stats().Dropped) })
	r.CounterFunc("collabd_webhook_coalesced_total", "Webhook change events merged into a newer one because a URL's queue was full.", func() float64 { return float64(n.Stats().Coalesced) })
	r.GaugeFunc("collabd_webhook_queue_length", "Webhook deliveries waiting or in flight, over every URL.", func() float64 { return float64(n.Stats().Queued) })
	return nil
}

// webhookOutbox is where the notifier keeps its deliveries: the document
// store's bbolt file on a single node. In cluster mode it is a bbolt file of
// the node's own (outboxFile) that holds no documents: the notifier's
// recovery then finds no changes a crash left unreported (List is empty),
// because it could not tell this node's commits from the others'; the
// deliveries it had queued survive restarts.
func (s *server) webhookOutbox() webhook.Outbox {
	if s.bolt != nil {
		return s.bolt
	}
	return s.outbox
}

// onCommitted is the hub's OnCommitted: the notifier's, or nil.
func (s *server) onCommitted() func(string, []storage.Record) {
	if s.webhooks == nil {
		return nil
	}
	return s.webhooks.Committed
}

// onDeleted is the hub's OnDeleted: the notifier's, or nil.
func (s *server) onDeleted() func(string) {
	if s.webhooks == nil {
		return nil
	}
	return s.webhooks.Deleted
}
