package storage

import bolt "go.etcd.io/bbolt"

// bboltTx gives tests direct access to the layout, to break it on purpose.
type bboltTx = bolt.Tx

// docB returns the bucket of document "d".
func docB(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketDocs).Bucket([]byte("d")) }
