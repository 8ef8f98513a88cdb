// Package shed keeps the video bitrate ceiling that load shedding and the
// operator set. The power policy (on battery) and the heat watch (hot) each
// ask for a cap under their own name; the operator sets a ceiling of their
// own (onairctl bitrate, the page). The lowest of them applies, through one
// Setter: the adaptive bitrate's ceiling, or both twins at one frame index
// when the bitrate is fixed, so the twins stay locked. When a cap is lifted
// the next lowest applies, and with none the operator's ceiling again: a
// shed never overwrites what the operator chose.
//
// Not for: deciding when to shed (power, power/thermal) or how the bitrate
// follows the network (bond/abr).
package shed

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"go.uber.org/zap"
)

// Setter applies a ceiling: why is what the bitrate status shows while the
// ceiling holds it down.
type Setter interface {
	SetCeiling(kbps int, why string) error
}

// Caps is the set of caps in force. Safe for concurrent use.
type Caps struct {
	max int
	set Setter
	log *zap.Logger

	mu       sync.Mutex
	operator int // the operator's ceiling (max: none)
	caps     map[string]limit
	applied  int
	why      string
}

type limit struct {
	kbps   int
	reason string
}

// New starts with no cap and the ceiling at maxKbps (video.bitrate_kbps).
func New(maxKbps int, set Setter, log *zap.Logger) (*Caps, error) {
	if maxKbps <= 0 || set == nil {
		return nil, errors.New("shed: a maximum bitrate and a setter are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Caps{max: maxKbps, set: set, log: log, operator: maxKbps, caps: map[string]limit{}, applied: maxKbps}, nil
}

// Shed asks for (on) or lifts (off) the cap of source (e.g. "power",
// "thermal") and applies the lowest ceiling in force. kbps 0 means half the
// maximum. Asking again with the same values does nothing.
func (c *Caps) Shed(source string, on bool, kbps int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kbps <= 0 || kbps > c.max {
		kbps = c.max / 2
	}
	old, had := c.caps[source]
	switch {
	case on && had && old.kbps == kbps:
		return nil
	case on:
		c.caps[source] = limit{kbps: kbps, reason: reason}
	case !had:
		return nil
	default:
		delete(c.caps, source)
	}
	return c.apply()
}

// SetOperator sets the operator's ceiling (0: none, back to the maximum);
// a cap in force keeps the bitrate lower until it is lifted.
func (c *Caps) SetOperator(kbps int) error {
	if kbps < 0 || kbps > c.max {
		return fmt.Errorf("shed: ceiling %d kbps: must be 0..%d", kbps, c.max)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kbps == 0 {
		kbps = c.max
	}
	c.operator = kbps
	return c.apply()
}

// Ceiling is the ceiling in force and why.
func (c *Caps) Ceiling() (kbps int, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied, c.why
}

// Shedding reports whether source's cap is in force.
func (c *Caps) Shedding(source string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.caps[source]
	return ok
}

// apply computes the lowest ceiling and sets it when it changed. Called with mu held.
func (c *Caps) apply() error {
	kbps, why := c.operator, ""
	if kbps < c.max {
		why = fmt.Sprintf("operator cap %d kbps", kbps)
	}
	for _, src := range slices.Sorted(maps.Keys(c.caps)) { // sorted: the same why for the same caps
		if k := c.caps[src]; k.kbps < kbps {
			kbps, why = k.kbps, fmt.Sprintf("shed (%s): %s", src, k.reason)
		}
	}
	if kbps == c.applied && why == c.why {
		return nil
	}
	if err := c.set.SetCeiling(kbps, why); err != nil {
		return fmt.Errorf("shed: ceiling %d kbps: %w", kbps, err)
	}
	c.log.Info("bitrate ceiling", zap.Int("kbps", kbps), zap.String("why", why))
	c.applied, c.why = kbps, why
	return nil
}
