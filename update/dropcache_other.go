//go:build !linux

package update

import "os"

// dropCache does nothing off Linux: the read-back may read the cache.
func dropCache(*os.File) {}
