//go:build !unix

package storage

import "time"

// cpuTime is not measured here: CPU figures read 0.
func cpuTime() time.Duration { return 0 }
