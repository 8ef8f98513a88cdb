//go:build !linux

package supervisor

import (
	"errors"
	"syscall"
)

// errNotLinux is what every child start fails with off Linux: onaird only
// ships on Linux, this stub keeps the package building on laptops.
var errNotLinux = errors.New("supervisor: child processes need linux (process groups, pdeathsig, waitid)")

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errNotLinux }

func waitExitNoReap(int) error { return errNotLinux }

func platformErr() error { return errNotLinux }
