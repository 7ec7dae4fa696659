// Package collector is the management centre's ingest: relays in "forward"
// mode POST batches of agent records here, and the loss checks read the
// per-agent counts back.
//
// Maintainer note.
//
// Endpoints (Collector.Handler): POST wire.PathIngest takes a
// wire.IngestBatch (optionally gzip, at most MaxBody before and after
// decompression) and answers wire.IngestAck; GET wire.PathCollStats answers
// wire.CollectorStats; GET /healthz. Errors are JSON wire.Error: 400
// malformed batch or a record without agent/seq, 405, 413, 415, and 503
// when the store cannot be written (the relay keeps the batch and retries).
//
// Ingest reads a batch once (wire.ScanIngest: validates it, finds each
// record's agent and seq, writes the line json.Encoder without HTML
// escaping would); a batch it leaves aside goes through encoding/json,
// which gives every 400 its message (ingest.go).
//
// A body of record frames (Content-Type wire.ContentTypeRecords, what
// relays send) is read by wire.ScanRecordFrames: each frame's CRC-32C, the
// record's `{"agent":"ID","seq":N,` head, one line; a bad frame is 400
// bad_record and nothing of the batch is stored. The records are stored
// as the relay wrote them (HTML-escaped, as json.Marshal writes), not
// parsed again: the collector trusts a holder of its ingest token to send
// records it validated, as it trusts the agent field of a JSON batch. The
// management host, whose relays belong to several accounts, turns a joined
// relay's frames into a JSON batch before they get here.
//
// File layout: DIR/ingest-000001.ndjson, ingest-000002.ndjson... one
// wire.Record per line, in arrival order; a segment is closed once the next
// batch would take it past SegmentBytes (a batch is never split).
//
// Guarantees:
//   - The ack is sent only after the accepted records are fsynced, and also
//     after the earlier write of any record reported as a duplicate, so an
//     acked record is always on disk. Concurrent batches share one fsync.
//   - Each (agent, seq) is written once. Per agent the state is the highest
//     contiguous seq plus runs of out-of-order seqs above it, so memory is
//     per gap, not per record.
//   - New rebuilds that state by reading every segment; a torn last line of
//     the newest segment (never acked) is cut off, unreadable lines are
//     skipped, and both are reported by RecoveryDropped (a relay serving
//     Handler exports them in /metrics). The duplicate counter is not
//     persisted and restarts at zero.
//   - Handler serves /metrics for a standalone collector (metrics.go: a
//     registry per Handler, process and Go collectors, Counts and the
//     recovery figures). A relay mounting Handler routes only ingest and
//     stats to it and puts CountsMetrics in its own /metrics. Counts, not
//     Stats, because Stats copies a map entry per agent under the lock.
//   - Segments are 0600 in a 0700 directory: they hold event data.
//   - A failed fsync makes the collector refuse work (503) until restarted,
//     because its state may then count records that are not on disk.
//
// Logs: New takes a *slog.Logger (nil: none) for the rebuild at start,
// repaired segments and refused ingest (relay=NAME err=...).
package collector
