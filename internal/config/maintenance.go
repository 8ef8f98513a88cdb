package config

import (
	"errors"

	"onair/maintenance/tunnel"
)

// Maintenance configures remote maintenance (maintenance:).
type Maintenance struct {
	// Tunnel is the reverse SSH tunnel to the studio's maintenance host
	// (maintenance.tunnel:); no host: none.
	Tunnel tunnel.Config `yaml:"tunnel"`
}

func (m Maintenance) validate(p *problems) {
	if !m.Tunnel.Configured() {
		return
	}
	var ce *tunnel.ConfigError
	if err := m.Tunnel.Validate(); errors.As(err, &ce) {
		*p = append(*p, ce.Problems...) // each names its maintenance.tunnel key
	} else if err != nil {
		*p = append(*p, err.Error())
	}
}
