package config

import "time"

// Supervisor configures child supervision (supervisor:).
type Supervisor struct {
	Grace      Duration `yaml:"grace"`       // SIGTERM → SIGKILL
	BackoffMax Duration `yaml:"backoff_max"` // cap of the restart backoff
	// StartTimeout is how long a new child may take to its first frame
	// (opening the codec, a device) before it counts as stalled. The 10 s
	// default suits real hardware; an emulated machine (QEMU without KVM)
	// needs minutes.
	StartTimeout Duration `yaml:"start_timeout"`
}

func defaultSupervisor() Supervisor {
	return Supervisor{Grace: Duration(5 * time.Second), BackoffMax: Duration(30 * time.Second), StartTimeout: Duration(10 * time.Second)}
}

func (s Supervisor) validate(p *problems) {
	if s.Grace <= 0 {
		p.add("supervisor.grace", "must be positive")
	}
	if s.BackoffMax < Duration(time.Second) {
		p.add("supervisor.backoff_max", "must be at least 1s")
	}
	if s.StartTimeout < Duration(time.Second) || s.StartTimeout > Duration(10*time.Minute) {
		p.add("supervisor.start_timeout", "%s: must be between 1s and 10m", s.StartTimeout)
	}
}
