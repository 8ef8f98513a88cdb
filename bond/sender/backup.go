package sender

import "time"

// Backup engagement. A backup link carries stream bytes only
//   - while no bond or duplicate link can carry (none alive, enabled and
//     under its cap), or
//   - once every such link has been saturated (in_flight·1000 ≥ window)
//     without a break for backupSaturatedHold;
//
// it disengages after they have had room without a break for
// backupReleaseHold when it engaged for saturation (the long hold keeps a
// link on the edge of its window from switching the metered link on and off
// every few packets), or for backupEngageHold when it engaged because no
// primary could carry (a returning primary takes the load back quickly).
//
// Saturation must last backupSaturatedHold (2 s) before it engages: a burst
// (an IDR, or ACKs held up by a loaded CPU: seen in CI, 122 KB on the backup
// in 5 s of a wired link that had room) fills a window for a moment, while a
// link really over its capacity stays saturated, and its window has grown to
// the maximum by then. A primary that can no longer carry engages it at once.
const (
	backupEngageHold    = 500 * time.Millisecond
	backupSaturatedHold = 2 * time.Second
	backupReleaseHold   = 5 * time.Second
)

// backupGate decides whether backup links are engaged. Pure state, fed with
// observations of the primary (bond and duplicate) links.
type backupGate struct {
	engaged        bool
	forOutage      bool      // engaged because no primary could carry
	saturatedSince time.Time // zero while some primary has room
	roomSince      time.Time // zero while all primaries are saturated
}

// observe feeds one observation: whether any primary link can carry, and
// whether all of those that can are saturated. It returns the new state.
func (g *backupGate) observe(now time.Time, primaryUp, allSaturated bool) bool {
	switch {
	case !primaryUp:
		g.engaged, g.forOutage = true, true
		g.saturatedSince, g.roomSince = time.Time{}, time.Time{}
	case allSaturated:
		g.roomSince = time.Time{}
		if g.saturatedSince.IsZero() {
			g.saturatedSince = now
		}
		if !g.engaged && now.Sub(g.saturatedSince) >= backupSaturatedHold {
			g.engaged, g.forOutage = true, false
		}
	default:
		g.saturatedSince = time.Time{}
		if !g.engaged {
			break
		}
		if g.roomSince.IsZero() {
			g.roomSince = now
		}
		hold := backupReleaseHold
		if g.forOutage {
			hold = backupEngageHold
		}
		if now.Sub(g.roomSince) >= hold {
			g.engaged = false
			g.roomSince = time.Time{}
		}
	}
	return g.engaged
}
