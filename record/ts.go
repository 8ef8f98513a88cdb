package record

// The little of MPEG-TS (H.222.0) the recorder reads: packet headers, the
// random access indicator, and the PAT and PMT sections that fit in one
// packet (tsmux's and FFmpeg's do, for one programme).

const (
	packetSize = 188
	syncByte   = 0x47
	pidPAT     = 0x0000

	tableIDPAT = 0x00
	tableIDPMT = 0x02
)

func pid(p []byte) uint16 { return uint16(p[1]&0x1f)<<8 | uint16(p[2]) }

func pusi(p []byte) bool { return p[1]&0x40 != 0 }

// randomAccess reports the adaptation field's random_access_indicator.
func randomAccess(p []byte) bool {
	return p[3]&0x20 != 0 && p[4] > 0 && p[5]&0x40 != 0
}

// payload is the packet's payload, after any adaptation field.
func payload(p []byte) []byte {
	afc := p[3] >> 4 & 3
	if afc&1 == 0 {
		return nil
	}
	off := 4
	if afc&2 != 0 {
		off += 1 + int(p[4])
	}
	if off >= len(p) {
		return nil
	}
	return p[off:]
}

// section is the PSI section starting in a PUSI packet, up to the packet's
// end.
func section(p []byte) []byte {
	pl := payload(p)
	if len(pl) < 1 || 1+int(pl[0]) >= len(pl) {
		return nil
	}
	return pl[1+int(pl[0]):]
}

// body returns the section's bytes after the 8-byte long header and before
// the CRC, if the section has tableID and ends within sec.
func body(sec []byte, tableID byte) ([]byte, bool) {
	if len(sec) < 12 || sec[0] != tableID || sec[1]&0x80 == 0 {
		return nil, false
	}
	end := 3 + (int(sec[1]&0x0f)<<8 | int(sec[2]))
	if end > len(sec) || end < 12 {
		return nil, false // spans packets: not supported (one programme fits)
	}
	return sec[8 : end-4], true
}

// parsePAT returns the PMT PID of the first programme.
func parsePAT(sec []byte) (uint16, bool) {
	b, ok := body(sec, tableIDPAT)
	if !ok {
		return 0, false
	}
	for i := 0; i+4 <= len(b); i += 4 {
		if prog := uint16(b[i])<<8 | uint16(b[i+1]); prog != 0 { // 0: the network PID
			return uint16(b[i+2]&0x1f)<<8 | uint16(b[i+3]), true
		}
	}
	return 0, false
}

// parsePMT returns the PID of the programme's first video stream.
func parsePMT(sec []byte) (uint16, bool) {
	b, ok := body(sec, tableIDPMT)
	if !ok || len(b) < 4 {
		return 0, false
	}
	i := 4 + (int(b[2]&0x0f)<<8 | int(b[3])) // after PCR_PID and the programme descriptors
	for i+5 <= len(b) {
		st, es := b[i], uint16(b[i+1]&0x1f)<<8|uint16(b[i+2])
		if isVideo(st) {
			return es, true
		}
		i += 5 + (int(b[i+3]&0x0f)<<8 | int(b[i+4]))
	}
	return 0, false
}

// isVideo reports whether a PMT stream_type is video: MPEG-1, MPEG-2,
// MPEG-4 Part 2, H.264, HEVC, VVC.
func isVideo(streamType byte) bool {
	switch streamType {
	case 0x01, 0x02, 0x10, 0x1b, 0x24, 0x33:
		return true
	}
	return false
}
