package srtla

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireBytesFromTheProtocolDocument holds each packet as SRTLA.md §3 and
// §6 spell it, byte for byte, and checks both directions.
func TestWireBytesFromTheProtocolDocument(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i)
	}
	reg := func(t16 string) string {
		return t16 + hex.EncodeToString(id[:])
	}
	cases := []struct {
		name string
		p    Packet
		wire string
	}{
		{"keepalive-belabox", &Keepalive{}, "9000"},
		{"keepalive-timestamp", &Keepalive{HasTimestamp: true, TimestampMs: 0x0102030405060708}, "90000102030405060708"},
		{"keepalive-stats", &Keepalive{HasTimestamp: true, TimestampMs: 1, Stats: &KeepaliveStats{ConnID: 2, Window: -3, InFlight: 4, RTTms: 5, NAKs: 6, BytesPS: 7}},
			"9000" + "0000000000000001" + "c01f" + "0001" + "00000002" + "fffffffd" + "00000004" + "00000005" + "00000006" + "00000007"},
		{"ack-10", &Ack{SNs: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7fffffff}},
			"91000000" + "00000001" + "00000002" + "00000003" + "00000004" + "00000005" + "00000006" + "00000007" + "00000008" + "00000009" + "7fffffff"},
		{"reg1", &Reg1{ID: id}, reg("9200")},
		{"reg2", &Reg2{ID: id}, reg("9201")},
		{"reg3", &Reply{Kind: TypeReg3}, "9202"},
		{"reg-err", &Reply{Kind: TypeRegErr}, "9210"},
		{"reg-ngp", &Reply{Kind: TypeRegNGP}, "9211"},
		{"reg-nak", &RegNAK{Reason: "no"}, "92126e6f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := mustHex(t, c.wire)
			got, err := c.p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("marshal:\n got %x\nwant %x", got, want)
			}
			if c.p.MarshalSize() != len(want) {
				t.Fatalf("MarshalSize %d, want %d", c.p.MarshalSize(), len(want))
			}
			back, err := Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := back.Marshal()
			if !bytes.Equal(again, want) {
				t.Fatalf("parse+marshal: got %x", again)
			}
		})
	}
	if ack, _ := (&Ack{SNs: make([]uint32, AckBatch)}).Marshal(); len(ack) != 44 {
		t.Fatalf("a full SRTLA ACK is %d bytes, SRTLA.md says 44", len(ack))
	}
}

// TestRegistrationIsExactly258Bytes pins the receiver's rule: a REG1 or REG2
// of any other length is not a registration.
func TestRegistrationIsExactly258Bytes(t *testing.T) {
	for _, n := range []int{2, 257, 259, 1500} {
		b := make([]byte, n)
		b[0], b[1] = 0x92, 0x00
		if err := new(Reg1).Unmarshal(b); err == nil {
			t.Errorf("REG1 of %d bytes accepted", n)
		}
		b[1] = 0x01
		if err := new(Reg2).Unmarshal(b); err == nil {
			t.Errorf("REG2 of %d bytes accepted", n)
		}
	}
}

// TestPaddedRepliesAndKeepalivesParse pins CERALIVE's 32-byte padded replies
// (some carrier NATs drop tiny frames): the trailing bytes are ignored.
func TestPaddedRepliesAndKeepalivesParse(t *testing.T) {
	for _, typ := range []Type{TypeReg3, TypeRegErr, TypeRegNGP, TypeKeepalive} {
		b := make([]byte, 32)
		putType(b, typ)
		p, err := Parse(b)
		if err != nil {
			t.Fatalf("%#x padded: %v", typ, err)
		}
		if p.Type() != typ {
			t.Fatalf("%#x parsed as %#x", typ, p.Type())
		}
	}
}

func TestMalformedPacketsAreErrorsOfTheirKind(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotSRTLA},
		{"srt-data", mustHex(t, "00000001"), ErrNotSRTLA},
		{"srt-ack", mustHex(t, "8002"), ErrNotSRTLA},
		{"unknown-srtla", mustHex(t, "9123"), ErrUnknownType},
		{"ack-half-word", mustHex(t, "91000000000001"), ErrBadLength},
		{"ack-no-header", mustHex(t, "9100"), ErrPacketTooShort},
		{"reg1-short", append(mustHex(t, "9200"), make([]byte, 10)...), ErrPacketTooShort},
		{"reg2-long", append(mustHex(t, "9201"), make([]byte, 300)...), ErrPacketTooLong},
		{"over-mtu", append(mustHex(t, "9000"), make([]byte, MTU)...), ErrPacketTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestClassifyChecksSRTLABeforeSRTControl(t *testing.T) {
	cases := map[string]Kind{
		"":         KindInvalid,
		"00":       KindInvalid,
		"0000":     KindSRTData,
		"7fff":     KindSRTData,
		"8000":     KindSRTControl,
		"8002":     KindSRTControl,
		"8fff":     KindSRTControl,
		"9000":     KindSRTLA,
		"92ff":     KindSRTLA,
		"9300":     KindSRTControl,
		"ffff0000": KindSRTControl,
	}
	for in, want := range cases {
		if got := Classify(mustHex(t, in)); got != want {
			t.Errorf("Classify(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestSRTFields(t *testing.T) {
	data := mustHex(t, "0000002a"+"00000000"+"00000000"+"00000000")
	if sn, err := DataSN(data); err != nil || sn != 42 {
		t.Fatalf("DataSN = %d, %v", sn, err)
	}
	if _, err := DataSN(data[:15]); !errors.Is(err, ErrPacketTooShort) {
		t.Fatalf("15-byte data: %v", err)
	}
	ack := mustHex(t, "80020000"+"00000001"+"00000000"+"00000000"+"00000064")
	if sn, err := AckLastSN(ack); err != nil || sn != 100 {
		t.Fatalf("AckLastSN = %d, %v", sn, err)
	}
	if _, err := AckLastSN(ack[:19]); !errors.Is(err, ErrPacketTooShort) {
		t.Fatalf("19-byte ACK: %v", err)
	}
	nak := mustHex(t, "80030000"+"00000000"+"00000000"+"00000000"+"00000005"+"8000000a"+"0000000c")
	got, err := NakLoss(nak)
	if err != nil {
		t.Fatal(err)
	}
	want := []LossRange{{5, 5}, {10, 12}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("NakLoss = %v, want %v", got, want)
	}
	if _, err := NakLoss(nak[:len(nak)-4]); !errors.Is(err, ErrBadLossList) {
		t.Fatalf("range without end: %v", err)
	}
}

// TestSequenceCompareAcrossTheWrap pins the reference's bug: it compares
// sequence numbers as signed integers, which is wrong at the 31-bit wrap.
func TestSequenceCompareAcrossTheWrap(t *testing.T) {
	if !SeqLess(0x7FFFFFFE, 1) {
		t.Fatal("0x7FFFFFFE should come before 1 across the wrap")
	}
	if SeqLess(1, 0x7FFFFFFE) {
		t.Fatal("1 should not come before 0x7FFFFFFE")
	}
	if SeqLess(5, 5) || !SeqLess(5, 6) {
		t.Fatal("plain order")
	}
	if d := SeqDiff(0x7FFFFFFF, 2); d != 3 {
		t.Fatalf("SeqDiff across wrap = %d", d)
	}
	if d := SeqDiff(2, 0x7FFFFFFF); d != -3 {
		t.Fatalf("SeqDiff back across wrap = %d", d)
	}
	nak := mustHex(t, "80030000"+"00000000"+"00000000"+"00000000"+"fffffffe"+"00000001")
	got, err := NakLoss(nak)
	if err != nil || len(got) != 1 || got[0].From != 0x7FFFFFFE || got[0].To != 1 {
		t.Fatalf("wrapping range = %v, %v", got, err)
	}
}

func TestDataRetransmittedFlag(t *testing.T) {
	b := mustHex(t, "0000002a"+"c4000001"+"00000000"+"00000000")
	if !DataRetransmitted(b) {
		t.Fatal("R flag set, not seen")
	}
	b[4] = 0xc0
	if DataRetransmitted(b) || DataRetransmitted(b[:15]) {
		t.Fatal("R flag clear or short packet seen as a retransmission")
	}
}

func TestAckRTTFromAFullACK(t *testing.T) {
	full := mustHex(t, "80020000"+"00000001"+"00000000"+"00000000"+"00000064"+"0001e240"+"00000000")
	if rtt, ok := AckRTT(full); !ok || rtt != 123456*time.Microsecond {
		t.Fatalf("AckRTT = %v, %v", rtt, ok)
	}
	if _, ok := AckRTT(full[:20]); ok {
		t.Fatal("a light ACK has no RTT")
	}
}
