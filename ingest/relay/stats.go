package relay

import (
	"maps"
	"time"
)

// Reasons a registration is refused (Counters.RegErrors keys).
const (
	// reasonGroupsFull: REG1 while MaxGroups groups exist (REG_ERR).
	reasonGroupsFull = "groups_full"
	// reasonLinksFull: REG2 for a group with MaxLinksPerGroup links (REG_ERR).
	reasonLinksFull = "links_full"
	// reasonAddrInUse: the source is a link of a group (REG1), or of
	// another group (REG2) (REG_ERR).
	reasonAddrInUse = "addr_in_use"
	// reasonNoGroup: REG2 with an unknown ID (REG_NGP).
	reasonNoGroup = "no_group"
)

// Kinds of malformed datagram (Counters.Malformed keys).
const (
	// malformedTooShort: under 2 bytes, an SRTLA packet shorter than its
	// type needs (a REG1 or REG2 under 258 bytes), or SRT under 16 bytes.
	malformedTooShort = "too_short"
	// malformedTooLong: over the 1500-byte MTU, or a REG1/REG2 over 258.
	malformedTooLong = "too_long"
	// malformedBadLength: an SRTLA ACK that is not whole words.
	malformedBadLength = "bad_length"
	// malformedUnknownType: a type16 in the SRTLA range that SRTLA does not define.
	malformedUnknownType = "unknown_type"
	// malformedUnexpected: an SRTLA packet only a receiver sends (ACK,
	// REG3, REG_ERR, REG_NGP, REG_NAK).
	malformedUnexpected = "unexpected_type"
	// malformedDownstream: a datagram in the SRTLA type range from the SRT
	// listener (dropped: the sender would take it for control).
	malformedDownstream = "srtla_from_downstream"
	// malformedOther: any other parser error.
	malformedOther = "other"
)

type counters struct {
	registrations, regRetries, groupsCreated    uint64
	regErrors, malformed                        map[string]uint64
	rateLimited, groupsRefused                  uint64
	groupsExpired, linksExpired                 uint64
	downstreamErrors, unknownSource, sendErrors uint64
	peerKeepalives                              uint64
}

func newCounters() counters {
	return counters{regErrors: map[string]uint64{}, malformed: map[string]uint64{}}
}

// Stats is a snapshot of the relay: its groups and its counters since Run.
type Stats struct {
	Groups   []GroupStats `json:"groups"`
	Counters Counters     `json:"counters"`
}

// GroupStats describes one group.
type GroupStats struct {
	// ID is the first bytes of the sender's half of the group ID, in hex;
	// the receiver's half is never shown (it is what admits a link).
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Downstream is the local address of the group's socket to the SRT
	// listener (the peer address the listener sees), empty before the first
	// SRT packet.
	Downstream string      `json:"downstream,omitempty"`
	Links      []LinkStats `json:"links"`
}

// LinkStats describes one link of a group.
type LinkStats struct {
	Addr     string    `json:"addr"`
	Since    time.Time `json:"since"`
	LastRcvd time.Time `json:"last_rcvd"`
	// Pkts and Bytes count what the link sent (SRT and keepalives; the
	// registrations are not counted).
	Pkts  uint64 `json:"pkts"`
	Bytes uint64 `json:"bytes"`
}

// Counters are totals since Run started.
type Counters struct {
	// Registrations counts links accepted (REG3 to a new link).
	Registrations uint64 `json:"registrations"`
	// GroupsCreated counts REG1s answered with a new group's REG2.
	GroupsCreated uint64 `json:"groups_created"`
	// RegRetries counts REG1s answered with the REG2 already sent, because
	// the sender evidently lost it.
	RegRetries uint64 `json:"reg_retries"`
	// RegErrors counts refused registrations by reason: groups_full,
	// links_full, addr_in_use (REG_ERR) and no_group (REG_NGP).
	RegErrors map[string]uint64 `json:"reg_errors"`
	// Malformed counts dropped datagrams by kind: too_short, too_long,
	// bad_length, unknown_type, unexpected_type, srtla_from_downstream, other.
	Malformed map[string]uint64 `json:"malformed"`
	// RateLimited counts registrations dropped by the per-source limit.
	RateLimited uint64 `json:"rate_limited"`
	// GroupsRefused counts REG1s refused because MaxGroups groups exist.
	GroupsRefused uint64 `json:"groups_refused"`
	// GroupsExpired and LinksExpired count removals by timeout.
	GroupsExpired uint64 `json:"groups_expired"`
	LinksExpired  uint64 `json:"links_expired"`
	// DownstreamErrors counts groups destroyed by a failed downstream send
	// or read.
	DownstreamErrors uint64 `json:"downstream_errors"`
	// UnknownSource counts keepalives and SRT from addresses that are no
	// group's link (dropped, as the reference does).
	UnknownSource uint64 `json:"unknown_source"`
	// SendErrors counts failed sends to senders.
	SendErrors uint64 `json:"send_errors"`
	// PeerKeepalives counts the SRT keepalives the relay sent to the
	// listener for groups in a total outage (Config.PeerKeepalive).
	PeerKeepalives uint64 `json:"peer_keepalives"`
}

// Stats returns a snapshot; it is safe to call at any time.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counters
	s := Stats{
		Groups: make([]GroupStats, 0, len(r.groups)),
		Counters: Counters{
			Registrations:    c.registrations,
			GroupsCreated:    c.groupsCreated,
			RegRetries:       c.regRetries,
			RegErrors:        maps.Clone(c.regErrors),
			Malformed:        maps.Clone(c.malformed),
			RateLimited:      c.rateLimited,
			GroupsRefused:    c.groupsRefused,
			GroupsExpired:    c.groupsExpired,
			LinksExpired:     c.linksExpired,
			DownstreamErrors: c.downstreamErrors,
			UnknownSource:    c.unknownSource,
			SendErrors:       c.sendErrors,
			PeerKeepalives:   c.peerKeepalives,
		},
	}
	for _, g := range r.groups {
		gs := GroupStats{ID: idPrefix(&g.id), Created: g.created, Links: make([]LinkStats, 0, len(g.links))}
		if g.down != nil {
			gs.Downstream = g.down.LocalAddr().String()
		}
		for _, l := range g.links {
			gs.Links = append(gs.Links, LinkStats{Addr: l.addr.String(), Since: l.since, LastRcvd: l.lastRcvd,
				Pkts: l.pkts, Bytes: l.bytes})
		}
		s.Groups = append(s.Groups, gs)
	}
	return s
}
