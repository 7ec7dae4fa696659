package relay

import (
	"fmt"
	"strings"
)

// Damage is what recovery of one store dropped since the relay started:
// records lost to a damaged or torn file and the bytes skipped or cut.
type Damage struct {
	Store   string `json:"store"` // "spool", "cache" or "collector"
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// recoveryDropper is implemented by the built-in collector
// (collector.Collector) when it is mounted as Config.Collector.
type recoveryDropper interface {
	RecoveryDropped() (records, bytes int64)
}

// damageAll reports every store this relay has, zero or not.
func (s *Server) damageAll() []Damage {
	var out []Damage
	if s.sink != nil {
		st := s.sink.spool.Stats()
		out = append(out, Damage{Store: "spool", Records: st.DroppedRecords, Bytes: st.DroppedBytes})
		r, b := s.sink.cacheDropped()
		out = append(out, Damage{Store: "cache", Records: r, Bytes: b})
	}
	if c, ok := s.cfg.Collector.(recoveryDropper); ok {
		r, b := c.RecoveryDropped()
		out = append(out, Damage{Store: "collector", Records: r, Bytes: b})
	}
	return out
}

// Damage returns the stores whose recovery dropped data since the relay
// started (none: nil), for /healthz, `outpost up` and the dashboard.
func (s *Server) Damage() []Damage {
	var out []Damage
	for _, d := range s.damageAll() {
		if d.Records > 0 || d.Bytes > 0 {
			out = append(out, d)
		}
	}
	return out
}

// FormatDamage renders Damage for an operator, e.g. "spool: 1 record
// (112 bytes) dropped by recovery"; "" when there is none.
func FormatDamage(ds []Damage) string {
	var parts []string
	for _, d := range ds {
		unit := "records"
		if d.Records == 1 {
			unit = "record"
		}
		parts = append(parts, fmt.Sprintf("%s: %d %s (%d bytes) dropped by recovery", d.Store, d.Records, unit, d.Bytes))
	}
	return strings.Join(parts, "; ")
}
