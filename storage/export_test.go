package storage

import bolt "go.etcd.io/bbolt"

// bboltTx gives tests direct access to the layout, to break it on purpose.
type bboltTx = bolt.Tx

func logB(tx *bolt.Tx) *bolt.Bucket  { return tx.Bucket(bucketLog) }
func snapB(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketSnap) }
func metaB(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketMeta) }
