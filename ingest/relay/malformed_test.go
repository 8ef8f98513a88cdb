package relay

import (
	"bytes"
	"testing"

	"onair/bond/srtla"
)

// typed is a datagram of n bytes starting with type16 t.
func typed(t srtla.Type, n int) []byte {
	b := make([]byte, n)
	if n >= 2 {
		b[0], b[1] = byte(t>>8), byte(t)
	}
	return b
}

// TestMalformedCountedAndDropped: everything a registered link may send
// that is not a registration, a keepalive or an SRT packet of 16 to 1500
// bytes is counted by kind and dropped: nothing reaches the listener, nothing
// is answered, and the link keeps working.
func TestMalformedCountedAndDropped(t *testing.T) {
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	makeGroup(t, a)

	for _, tc := range []struct {
		name string
		b    []byte
		kind string
	}{
		{"empty datagram", nil, malformedTooShort},
		{"one byte", []byte{0x90}, malformedTooShort},
		{"one zero byte", []byte{0x00}, malformedTooShort},
		{"REG1 of 257 bytes", typed(srtla.TypeReg1, 257), malformedTooShort},
		{"REG1 of 259 bytes", typed(srtla.TypeReg1, 259), malformedTooLong},
		{"bare REG2", typed(srtla.TypeReg2, 2), malformedTooShort},
		{"REG2 of 1000 bytes", typed(srtla.TypeReg2, 1000), malformedTooLong},
		{"ACK of 3 bytes", typed(srtla.TypeAck, 3), malformedTooShort},
		{"ACK of 5 bytes", typed(srtla.TypeAck, 5), malformedBadLength},
		{"ACK from a sender", typed(srtla.TypeAck, 44), malformedUnexpected},
		{"REG3 from a sender", typed(srtla.TypeReg3, 2), malformedUnexpected},
		{"REG_ERR from a sender", typed(srtla.TypeRegErr, 2), malformedUnexpected},
		{"REG_NGP from a sender", typed(srtla.TypeRegNGP, 2), malformedUnexpected},
		{"REG_NAK from a sender", append(typed(srtla.TypeRegNAK, 2), "bye"...), malformedUnexpected},
		{"unknown type 0x9050", typed(0x9050, 20), malformedUnknownType},
		{"unknown type 0x9203", typed(0x9203, 258), malformedUnknownType},
		{"unknown type 0x92FF", typed(0x92FF, 2), malformedUnknownType},
		{"keepalive over the MTU", typed(srtla.TypeKeepalive, 1501), malformedTooLong},
		{"SRT data over the MTU", srtData(9, string(make([]byte, 1500))), malformedTooLong},
		{"jumbo datagram", make([]byte, 9000), malformedTooLong},
		{"SRT data of 15 bytes", srtData(9, "")[:15], malformedTooShort},
		{"SRT ACK of 2 bytes", typed(srtla.SRTAck, 2), malformedTooShort},
		{"SRT handshake of 8 bytes", typed(srtla.SRTHandshake, 8), malformedTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Stats().Counters.Malformed[tc.kind]
			a.send(tc.b)
			waitFor(t, tc.kind+" counted", func() bool { return r.Stats().Counters.Malformed[tc.kind] == before+1 })
		})
	}
	s := r.Stats().Counters
	var total uint64
	for _, n := range s.Malformed {
		total += n
	}
	if total != 23 || s.UnknownSource != 0 || s.DownstreamErrors != 0 || len(r.Stats().Groups) != 1 {
		t.Errorf("counters %+v", s)
	}
	noMore(t, down.c)

	// The link still works: a keepalive is echoed and data forwarded.
	a.send([]byte{0x90, 0x00})
	if got := a.recv(); !bytes.Equal(got, []byte{0x90, 0x00}) {
		t.Fatalf("echo % x", got)
	}
	a.send(srtData(10, "ok"))
	if got, _ := down.recv(); !bytes.Equal(got, srtData(10, "ok")) {
		t.Fatalf("forwarded % x", got)
	}
}

// TestNewRejectsBadConfig: New names what is wrong and opens nothing.
func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{Listen: []string{"127.0.0.1:0"}, Downstream: "127.0.0.1:9000"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no listen", func(c *Config) { c.Listen = nil }},
		{"bad listen", func(c *Config) { c.Listen = []string{"nope"} }},
		{"no downstream", func(c *Config) { c.Downstream = "" }},
		{"downstream without port", func(c *Config) { c.Downstream = "127.0.0.1:0" }},
		{"negative max groups", func(c *Config) { c.MaxGroups = -1 }},
		{"ack batch over the MTU", func(c *Config) { c.AckBatch = 400 }},
		{"negative timeout", func(c *Config) { c.LinkTimeout = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if _, err := New(cfg, nil, nil); err == nil {
				t.Errorf("New(%+v) succeeded", cfg)
			}
		})
	}
	r, err := New(ok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.MaxGroups != 200 || r.cfg.MaxLinksPerGroup != 8 || r.cfg.LinkTimeout != DefaultLinkTimeout ||
		r.cfg.GroupTimeout != DefaultGroupTimeout || r.cfg.AckBatch != 10 || r.Addrs() != nil {
		t.Errorf("defaults %+v", r.cfg)
	}
}
