package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Frame formats. The current one starts with frameMagic so that a reader
// can find the next frame after damage by scanning for it; its checksum
// covers the length too. v1 frames (length, checksum of the payload,
// payload) are still read so that a spool written by an older relay
// drains; a v1 length can never equal the magic (it would be a 3.7 GB
// record).
const (
	frameHeader   = 12 // magic + length + CRC32C(length, payload)
	frameHeaderV1 = 8  // length + CRC32C(payload)
)

var frameMagic = []byte{0xF5, 0x0D, 0xA7, 0xE1} // 0xF5 never occurs in UTF-8

// appendFrame appends p framed in the current format.
func appendFrame(buf, p []byte) []byte {
	buf = append(buf, frameMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p)))
	sum := crc32.Update(0, castagnoli, buf[len(buf)-4:])
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Update(sum, castagnoli, p))
	return append(buf, p...)
}

// frameAt verifies the frame at off, reading no further than end. For a
// valid frame it returns the payload (valid until the next read) and the
// offset just past it; otherwise why says what is wrong. err is an I/O
// error.
func (r *segReader) frameAt(off, end int64) (p []byte, next int64, why string, err error) {
	rem := end - off
	if rem < 4 {
		return nil, 0, fmt.Sprintf("partial frame header (%d bytes)", rem), nil
	}
	h, err := r.bytes(off, 4, end)
	if err != nil {
		return corruptWhy(err)
	}
	hdr, v1 := int64(frameHeader), !bytes.Equal(h, frameMagic)
	if v1 {
		hdr = frameHeaderV1
	}
	if rem < hdr {
		return nil, 0, fmt.Sprintf("partial frame header (%d bytes)", rem), nil
	}
	if h, err = r.bytes(off, int(hdr), end); err != nil {
		return corruptWhy(err)
	}
	var lenb [4]byte
	copy(lenb[:], h[hdr-8:])
	n := int64(binary.LittleEndian.Uint32(lenb[:]))
	sum := binary.LittleEndian.Uint32(h[hdr-4:])
	switch {
	case n == 0:
		return nil, 0, "zero-length frame", nil
	case n > rem-hdr:
		return nil, 0, fmt.Sprintf("frame of %d bytes runs past the end of the data", n), nil
	}
	if p, err = r.bytes(off+hdr, int(n), end); err != nil {
		return corruptWhy(err)
	}
	got := crc32.Checksum(p, castagnoli)
	if !v1 {
		got = crc32.Update(crc32.Update(0, castagnoli, lenb[:]), castagnoli, p)
	}
	if got != sum {
		return nil, 0, "checksum mismatch", nil
	}
	return p, off + hdr + n, "", nil
}

// corruptWhy turns a read that found the file shorter than expected into
// a frame problem and passes other errors on.
func corruptWhy(err error) (p []byte, next int64, why string, _ error) {
	if errors.Is(err, errCorrupt) {
		return nil, 0, err.Error(), nil
	}
	return nil, 0, "", err
}

// resync returns the offset of the first valid current-format frame after
// off and before end, or -1: it scans byte by byte for the magic and
// verifies each candidate. v1 frames carry no marker, so in an old segment
// everything after damage is skipped.
func (r *segReader) resync(off, end int64) (int64, error) {
	pos := off + 1
	for end-pos >= frameHeader {
		n := int(min(int64(readChunk), end-pos))
		b, err := r.bytes(pos, n, end)
		if err != nil {
			if errors.Is(err, errCorrupt) {
				return -1, nil
			}
			return -1, err
		}
		i := bytes.Index(b, frameMagic)
		if i < 0 {
			pos += int64(n - len(frameMagic) + 1)
			continue
		}
		c := pos + int64(i)
		_, _, why, err := r.frameAt(c, end)
		if err != nil {
			return -1, err
		}
		if why == "" {
			return c, nil
		}
		pos = c + 1
	}
	return -1, nil
}
