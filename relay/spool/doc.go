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
//	uint32 LE payload length (> 0) | uint32 LE CRC32C(payload) | payload
//
// The writer starts a new segment before a frame that would take a
// non-empty segment past SegmentBytes; only the last segment is written.
// DIR/cursor (24 bytes: "SPC1", segment and offset as uint64 LE, CRC32C of
// the first 20 bytes) is the committed read position, replaced via
// cursor.tmp + fsync + rename + fsync of DIR. DIR/LOCK is flocked by the
// owning process.
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
// Segments below the cursor are deleted again at Open. After
// an fsync error Append fails until the Spool is reopened, since the page
// cache can no longer be trusted.
//
// # Recovery at Open
//
// Every segment from the cursor on is read and checked, so Open costs one
// sequential read of the backlog. Stats.Corrupt counts the events marked
// (counted) below.
//
//   - Torn tail in the last segment (partial header or payload, zero-filled
//     tail, or a bad checksum in the frame that ends the file): the segment
//     is truncated to its last good frame and writing resumes there. These
//     are writes that were never acknowledged. Logged, not counted.
//   - Bad frame with data after it, in any segment (bad checksum, zero or
//     impossible length): the rest of that segment is skipped, since frame
//     boundaries after it are unknown, and reading continues with the next
//     segment; the bytes stay on disk. A damaged last segment is sealed and
//     a new one started. Logged, counted.
//   - Missing segment between existing ones: skipped. Logged, counted per
//     missing file.
//   - Cursor in a missing segment: moved to the start of the next existing
//     one. Logged, counted. A cursor off a frame boundary or past the
//     valid data moves back to the previous boundary (redelivery).
//   - Damaged cursor file: reading restarts at the oldest segment. Logged,
//     counted.
//
// A frame that verified at Open but fails when Peek reads it is handled
// like a bad frame at Open.
package spool
