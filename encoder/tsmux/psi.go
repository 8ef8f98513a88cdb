package tsmux

// Hand-built PSI/SI sections. go-astits' Muxer always puts the PMT on PID
// 0x1000 and has no SDT, so the muxer writes PAT, PMT and SDT itself and
// keeps go-astits for PES packetisation only.

const (
	pidPAT = 0x0000
	pidSDT = 0x0011

	tableIDPAT = 0x00
	tableIDPMT = 0x02
	tableIDSDT = 0x42

	streamTypeH264 = 0x1B
	streamTypeAAC  = 0x0F // ISO/IEC 13818-7 audio with ADTS transport syntax

	transportStreamID = 1
	programNumber     = 1
	originalNetworkID = 0xff01 // private range, as FFmpeg uses
)

// crc32MPEG computes the CRC-32/MPEG-2 of b (poly 0x04C11DB7, init all ones,
// no reflection, no final xor) used by every PSI section.
func crc32MPEG(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, v := range b {
		crc ^= uint32(v) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// section wraps body (everything after section_length up to, not including,
// the CRC) into a long-form section with the given table id.
func section(tableID byte, privateBit bool, body []byte) []byte {
	length := len(body) + 4 // + CRC
	b0 := byte(0xb0)        // section_syntax_indicator=1, '0', reserved '11'
	if privateBit {
		b0 = 0xf0 // SDT: reserved_future_use '1'
	}
	s := make([]byte, 0, 3+length)
	s = append(s, tableID, b0|byte(length>>8&0x0f), byte(length))
	s = append(s, body...)
	crc := crc32MPEG(s)
	return append(s, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

// syntaxHeader is table_id_extension, version 0/current, section 0 of 0.
func syntaxHeader(ext uint16) []byte {
	return []byte{byte(ext >> 8), byte(ext), 0xc1, 0x00, 0x00}
}

func buildPAT(pmtPID uint16) []byte {
	body := syntaxHeader(transportStreamID)
	body = append(body, byte(programNumber>>8), byte(programNumber), 0xe0|byte(pmtPID>>8), byte(pmtPID))
	return section(tableIDPAT, false, body)
}

func buildPMT(videoPID, audioPID uint16) []byte {
	body := syntaxHeader(programNumber)
	body = append(body,
		0xe0|byte(videoPID>>8), byte(videoPID), // PCR_PID
		0xf0, 0x00, // program_info_length 0
		streamTypeH264, 0xe0|byte(videoPID>>8), byte(videoPID), 0xf0, 0x00,
		streamTypeAAC, 0xe0|byte(audioPID>>8), byte(audioPID), 0xf0, 0x00,
	)
	return section(tableIDPMT, false, body)
}

func buildSDT(provider, name string) []byte {
	desc := []byte{0x48, byte(3 + len(provider) + len(name)), 0x01 /* digital television */, byte(len(provider))}
	desc = append(desc, provider...)
	desc = append(desc, byte(len(name)))
	desc = append(desc, name...)

	body := syntaxHeader(transportStreamID)
	body = append(body, byte(originalNetworkID>>8), byte(originalNetworkID&0xff), 0xff)
	body = append(body,
		byte(programNumber>>8), byte(programNumber), // service_id
		0xfc,                                          // reserved, no EIT
		0x80|byte(len(desc)>>8&0x0f), byte(len(desc)), // running, not scrambled
	)
	body = append(body, desc...)
	return section(tableIDSDT, true, body)
}

// psiPacket puts one section into one TS packet (pointer_field 0, 0xff stuffing).
func psiPacket(dst []byte, pid uint16, cc uint8, sec []byte) []byte {
	var p [packetSize]byte
	p[0] = syncByte
	p[1] = 0x40 | byte(pid>>8&0x1f) // PUSI
	p[2] = byte(pid)
	p[3] = 0x10 | cc&0x0f // payload only
	p[4] = 0              // pointer_field
	n := copy(p[5:], sec)
	for i := 5 + n; i < packetSize; i++ {
		p[i] = 0xff
	}
	return append(dst, p[:]...)
}
