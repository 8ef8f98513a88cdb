//go:build !linux

package uplink

import "go.uber.org/zap"

// openNetlink fails where there is no netlink.
func openNetlink(Config, *zap.Logger) (kernel, error) { return nil, ErrUnsupported }
