package config

import (
	"time"

	"onair/update"
)

// Update configures how new builds go on air (update:): the A/B root
// slots and their boot state (update.Config, inline: public_key, slot_a,
// slot_b, bootloader, state_file, grubenv, healthy_after, max_tries,
// trial_deadline), and the on-air canary of a new encoder worker.
type Update struct {
	update.Config `yaml:",inline"`
	// CanaryAfter is how long a new encoder worker runs on the standby
	// encoder before it is promoted (onairctl canary).
	CanaryAfter Duration `yaml:"canary_after"`
}

func defaultUpdate() Update {
	return Update{Config: update.DefaultConfig(), CanaryAfter: Duration(30 * time.Second)}
}

func (u Update) validate(p *problems) {
	if d := u.CanaryAfter.D(); d < time.Second || d > time.Hour {
		p.add("update.canary_after", "%s: want 1s..1h", d)
	}
	if err := u.Validate(); err != nil {
		for _, e := range unjoin(err) {
			*p = append(*p, e.Error()) // each starts with its update. key
		}
	}
}

// unjoin is the errors an errors.Join made, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
