package config

import "time"

// Supervisor configures child supervision (supervisor:).
type Supervisor struct {
	Grace      Duration `yaml:"grace"`       // SIGTERM → SIGKILL
	BackoffMax Duration `yaml:"backoff_max"` // cap of the restart backoff
}

func defaultSupervisor() Supervisor {
	return Supervisor{Grace: Duration(5 * time.Second), BackoffMax: Duration(30 * time.Second)}
}

func (s Supervisor) validate(p *problems) {
	if s.Grace <= 0 {
		p.add("supervisor.grace", "must be positive")
	}
	if s.BackoffMax < Duration(time.Second) {
		p.add("supervisor.backoff_max", "must be at least 1s")
	}
}
