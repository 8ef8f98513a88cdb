package config

import "time"

// Update configures how new builds are taken on air (update:).
type Update struct {
	// CanaryAfter is how long a new encoder worker runs on the standby
	// encoder before it is promoted (onairctl canary).
	CanaryAfter Duration `yaml:"canary_after"`
}

func defaultUpdate() Update { return Update{CanaryAfter: Duration(30 * time.Second)} }

func (u Update) validate(p *problems) {
	if d := u.CanaryAfter.D(); d < time.Second || d > time.Hour {
		p.add("update.canary_after", "%s: want 1s..1h", d)
	}
}
