package webhook

// Abandon stops n the way a crash would: nothing more is written to the
// outbox (the changes not yet queued are not persisted).
func (n *Notifier) Abandon() {
	n.closeOnce.Do(n.cancel)
	n.wg.Wait()
	n.cfg.Outbox = nil // what the hub still reports is lost, as in a crash
}
