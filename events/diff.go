package events

import (
	"fmt"

	"onair/web/api"
)

// Diff returns the events between two status snapshots of the same onaird,
// prev taken before cur. It only compares: what happened between the two is
// known from counters and "last" fields (a restart count that moved, the
// newest switch), so a snapshot taken every 100 ms misses no failover even
// if two happen between snapshots (the count says how many; the newest
// carries the detail). Times are left zero: Add stamps them.
func Diff(prev, cur *api.Status) []api.Event {
	var evs []api.Event
	add := func(kind api.EventKind, subject string, frame *uint64, format string, args ...any) {
		evs = append(evs, api.Event{Kind: kind, Subject: subject, Frame: frame, Reason: fmt.Sprintf(format, args...)})
	}
	diffVideo(prev, cur, add)
	diffAudio(prev, cur, func(e api.Event) { evs = append(evs, e) })
	diffRestarts(prev, cur, add)

	// Only connected ↔ not connected: the retries of a dead output
	// (connecting, backoff, connecting…) are the log's business.
	if p, c := prev.Output, cur.Output; (p.State == outputConnected) != (c.State == outputConnected) {
		why := string(c.State)
		if c.LastError != "" && c.State != outputConnected {
			why += ": " + c.LastError
		}
		add(api.EventOutput, c.Target, nil, "%s → %s", p.State, why)
	} else if c.State == outputConnected && c.Connects > p.Connects {
		// Lost and connected again between two snapshots.
		add(api.EventOutput, c.Target, nil, "reconnected (%d connects since start; last error: %s)", c.Connects, c.LastError)
	}
	if p, c := prev.OnAir, cur.OnAir; p.Phase != c.Phase {
		add(api.EventOnAir, "", nil, "%s → %s (%s)", p.Phase, c.Phase, c.Reason)
	}
	diffUplinks(prev.Bond, cur.Bond, add)
	if p, c := prev.Power, cur.Power; c != nil && (p == nil || p.State != c.State) {
		from := "none"
		if p != nil {
			from = string(p.State)
		}
		add(api.EventPower, string(c.Source), nil, "%s → %s: %s", from, c.State, c.Reason)
	}
	if p, c := prev.Thermal, cur.Thermal; c != nil && p != nil && p.Hot != c.Hot {
		if c.Hot {
			add(api.EventThermal, "", nil, "hot: %.1f °C ≥ warn_c %.1f °C, bitrate shed", c.MaxC, c.WarnC)
		} else {
			add(api.EventThermal, "", nil, "cool again: %.1f °C", c.MaxC)
		}
	}
	if p, c := prev.Tunnel, cur.Tunnel; c != nil && p != nil && (p.State == api.TunnelUp) != (c.State == api.TunnelUp) {
		why := string(c.State)
		if c.State != api.TunnelUp && c.LastError != "" {
			why += ": " + c.LastError
		}
		add(api.EventTunnel, c.Target, nil, "%s → %s", p.State, why)
	}
	if p, c := prev.Canary, cur.Canary; c != nil && p != nil && p.State != c.State {
		why := c.Reason
		if why == "" {
			why = c.Worker
		}
		add(api.EventCanary, c.Encoder, nil, "%s → %s: %s", p.State, c.State, why)
	}
	if p, c := prev.Update, cur.Update; c != nil && p != nil && p.State != c.State {
		add(api.EventUpdate, c.Slot, nil, "slot %s: %s → %s %s", c.Slot, p.State, c.State, c.LastError)
	}
	if p, c := prev.Recording, cur.Recording; c != nil && p != nil && p.State != c.State {
		add(api.EventRecording, c.Dir, nil, "%s → %s: %s", p.State, c.State, c.Reason)
	}
	return evs
}

// outputConnected is output.StateConnected (this package reads only the
// status types).
const outputConnected api.OutputState = "connected"

type adder func(kind api.EventKind, subject string, frame *uint64, format string, args ...any)

func diffVideo(prev, cur *api.Status, add adder) {
	p, c := prev.Video.Switch, cur.Video.Switch
	if n := c.Switches - p.Switches; c.Switches > p.Switches && c.LastSwitch != nil {
		ls := c.LastSwitch
		frame := ls.AfterIndex + 1
		why := ls.Reason
		if ls.AtNextIDR {
			why += ", from its next IDR (twins were unlocked)"
		}
		if n > 1 {
			why += fmt.Sprintf(" (%d switches since the last report)", n)
		}
		add(api.EventVideoFailover, ls.To, &frame, "%s → %s: %s", ls.From, ls.To, why)
	}
	if p.Twins && c.Twins && p.Locked != c.Locked {
		if c.Locked {
			add(api.EventTwins, "", nil, "twins locked: a failover is hitless")
		} else {
			add(api.EventTwins, "", nil, "twins unlocked: a failover now waits for an IDR")
		}
	}
}

// diffAudio reports the audio switches newer than prev's, with their own
// frame index and reason (the status keeps the newest few).
func diffAudio(prev, cur *api.Status, push func(api.Event)) {
	if cur.Audio.Switches <= prev.Audio.Switches {
		return
	}
	n := cur.Audio.Switches - prev.Audio.Switches
	last := cur.Audio.LastSwitches
	k := len(last)
	if n < uint64(k) {
		k = int(n) //nolint:gosec // n < len(last)
	}
	if uint64(k) < n {
		push(api.Event{Kind: api.EventAudioFailover,
			Reason: fmt.Sprintf("%d audio switches not kept in the status", n-uint64(k))})
	}
	for _, s := range last[len(last)-k:] {
		idx := s.Index
		push(api.Event{Kind: api.EventAudioFailover, Subject: s.To, Frame: &idx, Time: s.At,
			Reason: fmt.Sprintf("%s → %s: %s", s.From, s.To, s.Reason)})
	}
}

func diffRestarts(prev, cur *api.Status, add adder) {
	pc := map[string]api.ChildStatus{}
	for _, c := range prev.Children {
		pc[c.Name] = c
	}
	for _, c := range cur.Children {
		p, ok := pc[c.Name]
		if !ok || c.Instance <= p.Instance || c.Instance <= 1 {
			continue
		}
		why := c.LastError
		if why == "" {
			why = "started again"
		}
		if c.Binary != p.Binary && c.Binary != "" {
			why += "; now runs " + c.Binary
		}
		add(api.EventRestart, c.Name, nil, "instance %d: %s", c.Instance, why)
	}
	pm := map[string]api.Component{}
	for _, c := range prev.Components {
		pm[c.Name] = c
	}
	for _, c := range cur.Components {
		p, ok := pm[c.Name]
		if !ok || c.Restarts <= p.Restarts {
			continue
		}
		why := c.LastError
		if why == "" {
			why = "started again"
		}
		add(api.EventRestart, c.Name, nil, "restart %d: %s", c.Restarts, why)
	}
}

func diffUplinks(prev, cur *api.BondStatus, add adder) {
	if cur == nil || prev == nil {
		return
	}
	pu := map[string]api.UplinkStatus{}
	for _, u := range prev.Uplinks {
		pu[u.Name] = u
	}
	for _, u := range cur.Uplinks {
		p, ok := pu[u.Name]
		switch {
		case !ok:
			add(api.EventUplink, u.Name, nil, "appeared: %s", u.State)
		case p.Enabled != u.Enabled:
			if u.Enabled {
				add(api.EventUplink, u.Name, nil, "enabled by the operator")
			} else {
				add(api.EventUplink, u.Name, nil, "disabled by the operator")
			}
		case p.State != u.State:
			why := string(u.State)
			if u.LastError != "" && u.LastError != p.LastError {
				why += ": " + u.LastError
			}
			add(api.EventUplink, u.Name, nil, "%s → %s", p.State, why)
		case p.Carrying != u.Carrying && u.Policy == api.PolicyBackup:
			if u.Carrying {
				add(api.EventUplink, u.Name, nil, "backup link engaged: the others cannot carry the bitrate")
			} else {
				add(api.EventUplink, u.Name, nil, "backup link released")
			}
		}
	}
}
