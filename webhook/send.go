package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// sender delivers t's queue in order.
func (n *Notifier) sender(t *target) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		n.mu.Lock()
		var d *delivery
		wait := time.Hour
		if len(t.queue) > 0 {
			head := t.queue[0]
			if w := time.Until(head.next); w <= 0 {
				d = head
				d.inflight = true
			} else {
				wait = w
			}
		}
		n.mu.Unlock()
		if d == nil {
			timer.Reset(wait)
			select {
			case <-n.ctx.Done():
				return
			case <-t.wake:
			case <-timer.C:
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			continue
		}
		err := n.attempt(d)
		if n.ctx.Err() != nil {
			// Stopping: the attempt was cut short; the delivery stays in
			// the outbox for the next start.
			n.mu.Lock()
			d.inflight = false
			n.mu.Unlock()
			return
		}
		n.mu.Lock()
		d.inflight = false
		done := err == nil
		if !done {
			d.attempts++
			n.failures.Add(1)
			if d.attempts >= n.cfg.MaxAttempts {
				n.gaveUp.Add(1)
				done = true
				n.log.Error().Err(err).Str("url", t.url).Str("event", d.Event.ID).Int("attempts", d.attempts).Msg("webhook: delivery given up")
			} else {
				d.next = time.Now().Add(n.backoff(d.attempts))
				n.log.Warn().Err(err).Str("url", t.url).Str("event", d.Event.ID).Int("attempt", d.attempts).Time("retry", d.next).Msg("webhook: delivery failed")
			}
		} else {
			n.delivered.Add(1)
		}
		if done {
			if i := slices.Index(t.queue, d); i >= 0 {
				t.queue = slices.Delete(t.queue, i, i+1)
			}
		}
		n.mu.Unlock()
		if done {
			n.write(nil, []string{d.key})
		}
	}
}

// backoff is the wait before retry number attempt (1 = the first retry):
// full jitter over MinBackoff*2^(attempt-1), capped, at least MinBackoff/2.
func (n *Notifier) backoff(attempt int) time.Duration {
	ceil := n.cfg.MinBackoff << min(attempt-1, 30)
	if ceil <= 0 || ceil > n.cfg.MaxBackoff {
		ceil = n.cfg.MaxBackoff
	}
	lo := n.cfg.MinBackoff / 2
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo)
}

// attempt POSTs d once. With Config.Text the text at the event's to_rev
// is read now (it is not kept in the outbox); when it cannot be read (the
// document was deleted since) the event goes without it.
func (n *Notifier) attempt(d *delivery) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout)
	defer cancel()
	ev := d.Event
	if n.cfg.Text != nil && ev.Type != TypeDeleted {
		text, err := n.cfg.Text(ctx, ev.Doc, ev.ToRev)
		if err == nil {
			ev.Text = &text
		} else {
			n.log.Warn().Err(err).Str("doc", ev.Doc).Uint64("rev", ev.ToRev).Msg("webhook: event sent without its text")
		}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "collabd-webhook")
	req.Header.Set(HeaderEvent, d.Event.Type)
	req.Header.Set(HeaderDelivery, d.Event.ID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.attempts+1))
	req.Header.Set(HeaderSignature, Sign([]byte(n.cfg.Secret), time.Now(), body))
	start := time.Now()
	res, err := n.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode > 299 {
			err = fmt.Errorf("webhook: %s answered %d", d.URL, res.StatusCode)
		}
	}
	if n.cfg.ObserveAttempt != nil {
		n.cfg.ObserveAttempt(time.Since(start), err == nil)
	}
	return err
}
