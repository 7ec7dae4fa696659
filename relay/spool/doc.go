// Package spool is the relay's durable on-disk FIFO. The relay appends the
// events it has acknowledged to agents and a forwarding loop drains them
// to the collector, so records must survive kill -9 and power loss until
// the collector has acknowledged them. Delivery is at-least-once; the
// collector deduplicates.
//
// # Files
//
// DIR/NNNNNNNNNNNNNNNNNNNN.seg are segments, numbered consecutively from
// 1 (20 zero-padded digits). Each holds frames:
//
//	F5 0D A7 E1 | uint32 LE payload length (> 0) | uint32 LE CRC32C(length, payload) | payload
//
// The marker lets a reader find the next frame after damage (0xF5 never
// occurs in UTF-8, and a candidate counts only if its checksum verifies);
// the checksum covers the length so a damaged length is caught. Frames of
// the previous format (uint32 length | CRC32C(payload) | payload, no
// marker) are still read, so a spool written by an older relay drains
// without a migration; the new relay appends current frames after them in
// the same segment.
//
// The writer starts a new segment before a frame that would take a
// non-empty segment past SegmentBytes; only the last segment is written.
// DIR/cursor (24 bytes: "SPC1", segment and offset as uint64 LE, CRC32C of
// the first 20 bytes) is the committed read position, replaced via
// cursor.tmp + fsync + rename + fsync of DIR. DIR/LOCK is flocked by the
// owning process. The directory is 0700 and its files 0600 (Open tightens
// those an older relay left 0755/0644).
//
// # Durability
//
// Append returns nil only after its frames are fsynced (group commit: one
// fsync covers every Append written before it started, see
// Options.SyncInterval). A new segment's directory entry is fsynced before
// it receives frames, and the previous segment is fsynced before the
// switch, so every segment but the last is complete on disk. Peek returns
// only fsynced records. Commit persists the cursor before deleting
// segments, and otherwise at most Options.CursorSync late (0: every
// Commit), so a crash can only re-deliver, never skip; Close persists it.
// Segments below the cursor are deleted again at Open. PeekAfter and
// WaitAfter let the reader keep several batches in flight (peek past the
// last one handed out); it must Commit their positions in order, each
// only once it and every batch before it were acknowledged. After
// an fsync error Append fails until the Spool is reopened, since the page
// cache can no longer be trusted.
//
// # Recovery at Open
//
// Every segment from the cursor on is read and checked, so Open costs one
// sequential read of the backlog. Nothing intact is given up: after a bad
// frame the reader scans byte by byte for the next frame whose marker and
// checksum verify and resumes there. Stats.Corrupt counts the events
// marked (counted) below; Stats.DroppedRecords/DroppedBytes count what was
// lost, torn tails included (a damaged range counts as one record, a
// zero-filled tail as none).
//
//   - Bad frame followed by a valid one, in any segment: the bytes in
//     between (a "hole", kept on disk) are skipped by readers. Logged,
//     counted. The cursor stays where it is when it sits on a record
//     boundary, before or after the hole.
//   - Torn tail in the last segment (no valid frame after a partial header
//     or payload, a zero-filled tail or a bad checksum): the segment is
//     truncated to its last good frame and writing resumes there. These are
//     normally writes that were never acknowledged. Logged, not counted as
//     corruption, but dropped records/bytes are.
//   - Bad frame with nothing valid after it in a sealed segment (always
//     the case in a previous-format segment, which has no marker to find):
//     the rest of that segment is skipped; the bytes stay on disk. Logged,
//     counted.
//   - Missing segment between existing ones: skipped. Logged, counted per
//     missing file.
//   - Cursor in a missing segment: moved to the start of the next existing
//     one. Logged, counted. A cursor off a record boundary or past the
//     valid data moves back to the previous boundary (redelivery).
//   - Damaged cursor file: reading restarts at the oldest segment. Logged,
//     counted.
//
// A frame that verified at Open but fails when Peek reads it is handled
// the same way: skipped up to the next valid frame, or, if none follows in
// the durable part of its segment, the rest of the segment is dropped (an
// active segment is then sealed and Appends still waiting for their fsync
// fail, so they are retried rather than acknowledged).
//
// Logs: Options.Log (nil: none) receives the recovery and corruption
// reports above, a message plus segment, offset, problem and bytes.
package spool
