// Package cachering keeps a relay's events on the proxy host when the
// cluster policy is "cache": a capped ring of NDJSON segment files that a
// SIEM shipper tails.
//
// Maintainer note.
//
// File layout (one ring per directory, one process per ring):
//
//	DIR/export.log          live file, opened O_APPEND; `tail -F export.log` follows it
//	DIR/export.log.000001   rotated segments, oldest = lowest number
//	DIR/export.log.000002   ...
//
// The live file is renamed to the next number once the next line would take
// it past Options.SegmentBytes, then a new live file is created. Other files
// in DIR are ignored.
//
// Guarantees:
//   - Append returns only after its lines are fsynced (concurrent Appends
//     share one fsync), so the relay may acknowledge the agent afterwards.
//   - Every file holds whole lines, each one JSON value; a torn last line
//     left by a crash is cut off when the ring is reopened. Append checks
//     each line (json.Valid, no newline); AppendValid is for a caller that
//     wrote the lines itself from input it validated (the relay's framing)
//     and skips that second check.
//   - After each Append (and at Open and SetMax) the oldest rotated
//     segments are deleted until the total is <= MaxBytes. The live file is
//     not deleted (SetMax rotates it first if it alone exceeds the new cap)
//     and is at most SegmentBytes <= MaxBytes, so the total
//     stays within the cap. A line longer than a segment is refused
//     (ErrTooLarge, nothing written): stored, it would take the ring past
//     the cap and evict all older data.
//     A failed delete is logged and retried on the next Append.
//   - Reopening continues the numbering (after the highest segment still on
//     disk) and the byte accounting; Stats.Dropped counts only what this
//     process deleted.
//   - Event data is private by default: the ring creates its directory
//     0700 and files 0600. If the operator opened an existing directory to
//     a group (g+rx) for the shipper, files are created 0640 instead.
//   - At-least-once: an Append that fails part-way may have written some of
//     its lines; the caller retries and readers dedup by (agent, seq).
//
// Logs: Options.Log (nil: none) receives repairs and failed deletes.
package cachering
