package relay

import (
	"net/http"

	"outpost/relay/wire"
	"outpost/store"
)

// StatsToken is the token that reads the built-in collector's /v1/stats
// (kept in DATA/stats.token unless Config.StatsToken names one).
func (s *Server) StatsToken() string { return s.cfg.StatsToken }

// requireStatsAuth guards /v1/stats, which lists every agent id of every
// account: the stats token or this process's ingest token only. Relay
// credentials do not do: a relay of one account would see the others.
func (h *management) requireStatsAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !wire.BearerIs(auth, h.s.cfg.StatsToken) && !wire.BearerIs(auth, h.ingestToken) {
			h.s.m.authFail.Add(1)
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "stats need the stats token (DATA/stats.token): Authorization: Bearer TOKEN")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireMetricsAuth asks for Config.MetricsToken on /metrics when the
// operator set one; otherwise metrics stay open (they carry counts only,
// no agent, relay or account identity).
func (s *Server) requireMetricsAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.MetricsToken != "" && !wire.BearerIs(r.Header.Get("Authorization"), s.cfg.MetricsToken) {
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "metrics need the metrics token: Authorization: Bearer TOKEN")
			return
		}
		next(w, r)
	}
}
