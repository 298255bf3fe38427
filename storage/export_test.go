package storage

import bolt "go.etcd.io/bbolt"

// bboltTx gives tests direct access to the layout, to break it on purpose.
type bboltTx = bolt.Tx

func logB(tx *bolt.Tx) *bolt.Bucket  { return tx.Bucket(bucketLog) }
func snapB(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketSnap) }
func metaB(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketMeta) }

// crash abandons s the way a SIGKILL would: the background loop stops,
// the files close, nothing is checkpointed.
func crash(s *Bolt) {
	if s.closed.Swap(true) {
		return
	}
	if s.journal != nil {
		close(s.stop)
		<-s.done
		s.commitMu.Lock()
		s.journal.close()
		s.commitMu.Unlock()
	}
	s.db.Close()
}
