package nut

import "time"

// Reading is one read of a UPS: its variables as upsd listed them, with the
// three the power policy uses parsed.
type Reading struct {
	// Status is ups.status split into its tokens (OL, OB, LB, FSD, CHRG,
	// DISCHRG, RB, OVER, …), in upsd's order; nil when the UPS has none.
	Status []string
	// Charge is battery.charge in percent, Runtime battery.runtime in
	// seconds; -1 when the UPS does not report it or reports no number.
	Charge  float64
	Runtime float64
	// Vars holds every variable of LIST VAR, by name.
	Vars map[string]string
	// At is when the read completed (the client's clock).
	At time.Time
}

// Has reports whether ups.status holds token (exact, case-sensitive, as
// upsd sends them).
func (r Reading) Has(token string) bool {
	for _, s := range r.Status {
		if s == token {
			return true
		}
	}
	return false
}
