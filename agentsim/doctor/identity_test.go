package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
)

func TestDoctorIdentity(t *testing.T) {
	ctx := context.Background()
	ca := drNewCA(t, "fleet CA")
	id := &agentsim.Identity{AgentID: "ag_1", Secret: "s3cret"}
	var gotAuth, gotFP atomic.Value
	relayAnswering := func(status int, dup bool) string {
		return drRelay(t, ca, drHealthy(func(w http.ResponseWriter, r *http.Request) {
			gotAuth.Store(r.Header.Get("Authorization"))
			var req wire.CheckinRequest
			json.NewDecoder(r.Body).Decode(&req)
			gotFP.Store(req.Fingerprint)
			if status != http.StatusOK {
				http.Error(w, `{"code":"unauthorized","error":"agent credentials not recognised"}`, status)
				return
			}
			json.NewEncoder(w).Encode(wire.CheckinResponse{DuplicateID: dup, ServerTimeUTC: time.Now()})
		}))
	}
	base := func() *Doctor {
		return &Doctor{CASHA256: ca.fingerprint(), Identity: id, IdentityDir: "/opt/agent", Timeout: time.Second,
			Fingerprint: func() (string, error) { return "fp-this-machine", nil }}
	}
	dupFix := []string{"copied or baked into an image", "delete it", "install the agent again"}

	t.Run("relay says duplicate", func(t *testing.T) {
		d := base()
		drExpect(t, d.CheckIdentity(ctx, []string{relayAnswering(200, true)}), VerdictFail, dupFix...)
		if gotAuth.Load() != "Bearer ag_1:s3cret" || gotFP.Load() != "fp-this-machine" {
			t.Errorf("check-in sent auth %v fingerprint %v", gotAuth.Load(), gotFP.Load())
		}
	})
	t.Run("relay says fine", func(t *testing.T) {
		drExpect(t, base().CheckIdentity(ctx, []string{relayAnswering(200, false)}), VerdictOK)
	})
	t.Run("relay does not know the agent", func(t *testing.T) {
		drExpect(t, base().CheckIdentity(ctx, []string{relayAnswering(401, false)}), VerdictFail, "re-enrol")
	})
	t.Run("plain HTTP refused: the next relay is tried", func(t *testing.T) {
		plain := httptest.NewServer(drHealthy(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(wire.Error{Code: "forbidden", Message: "authenticated calls need TLS: use the https port"})
		}))
		defer plain.Close()
		c := base().CheckIdentity(ctx, []string{plain.URL})
		drExpect(t, c, VerdictSkip)
		if !strings.Contains(c.Detail, "need TLS") {
			t.Errorf("detail %q", c.Detail)
		}
		drExpect(t, base().CheckIdentity(ctx, []string{plain.URL, relayAnswering(200, true)}), VerdictFail, dupFix...)
	})
	t.Run("pin mismatch: the secret is not sent", func(t *testing.T) {
		d := base()
		d.CASHA256 = drNewCA(t, "other").fingerprint()
		gotAuth.Store("")
		drExpect(t, d.CheckIdentity(ctx, []string{relayAnswering(200, true)}), VerdictSkip)
		if gotAuth.Load() != "" {
			t.Errorf("credentials reached a relay with the wrong CA")
		}
	})
	t.Run("store says duplicate", func(t *testing.T) {
		d := base()
		d.Agent = func(_ context.Context, id string) (Agent, error) {
			return Agent{ID: id, Hostname: "web-1", Duplicate: true}, nil
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, dupFix...)
		d.Agent = func(_ context.Context, id string) (Agent, error) {
			return Agent{ID: id, Hostname: "web-1"}, nil
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictOK)
		d.Agent = func(_ context.Context, id string) (Agent, error) {
			return Agent{}, fmt.Errorf("agent %s: %w", id, ErrUnknownAgent)
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, "re-enrol")
	})
	t.Run("damaged identity file", func(t *testing.T) {
		d := &Doctor{IdentityDir: "/opt/agent", IdentityErr: errors.New("no agent id or secret")}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, filepath.Join("/opt/agent", agentsim.IdentityFile))
	})
	t.Run("fleet duplicates on the management host", func(t *testing.T) {
		d := &Doctor{Duplicates: func(context.Context) ([]Agent, int, error) {
			return []Agent{{ID: "ag_7", Hostname: "clone-a"}}, 3, nil
		}}
		c := d.CheckIdentity(ctx, nil)
		drExpect(t, c, VerdictFail, "outpost agent list --duplicate", "re-enrol")
		if !strings.Contains(c.Detail, "clone-a (ag_7)") || !strings.Contains(c.Detail, "2 more") {
			t.Errorf("detail %q", c.Detail)
		}
		d.Duplicates = func(context.Context) ([]Agent, int, error) { return nil, 0, nil }
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictOK)
	})
	t.Run("nothing to check", func(t *testing.T) {
		drExpect(t, (&Doctor{}).CheckIdentity(ctx, nil), VerdictSkip)
	})
}
