package agentsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
)

// fakeRelay answers the agent protocol minimally and records the source
// addresses agents connect from.
type fakeRelay struct {
	mu       sync.Mutex
	sources  map[string]bool
	agents   int
	maxBatch int // sent in check-in settings
	biggest  int // most records seen in one events request
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	f.mu.Lock()
	f.sources[host] = true
	f.mu.Unlock()
	switch r.URL.Path {
	case wire.PathEnrol:
		f.mu.Lock()
		f.agents++
		id := fmt.Sprintf("ag_%d", f.agents)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(wire.EnrolResponse{AgentID: id, Secret: "s", Settings: wire.Settings{InventoryInterval: time.Hour}})
	case wire.PathCheckin:
		var req wire.CheckinRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Wait > 0 {
			select { // a short hold, like a relay's long poll
			case <-r.Context().Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		f.mu.Lock()
		resp := wire.CheckinResponse{Settings: wire.Settings{InventoryInterval: time.Hour, MaxBatch: f.maxBatch}}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(resp)
	case wire.PathEvents:
		var b wire.EventBatch
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		f.biggest = max(f.biggest, len(b.Records))
		f.mu.Unlock()
		ack := wire.EventAck{Acked: []uint64{}}
		for _, rec := range b.Records {
			ack.Acked = append(ack.Acked, rec.Seq)
		}
		json.NewEncoder(w).Encode(ack)
	default:
		http.NotFound(w, r)
	}
}

func TestRunSimSpreadsSourceAddresses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ips    int
		want   []string
		useTLS bool
	}{
		{"plain HTTP, shared transport per address", 3, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, false},
		{"TLS, one transport per agent", 2, []string{"127.0.0.2", "127.0.0.3"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRelay{sources: map[string]bool{}}
			srv := httptest.NewUnstartedServer(f)
			if tt.useTLS {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			pin := ""
			if tt.useTLS {
				pin = wire.Fingerprint(srv.Certificate().Raw)
			}
			rep, err := agentsim.RunSim(context.Background(), agentsim.SimConfig{
				Proxies: []string{srv.URL}, CASHA256: pin, Key: "k", Agents: 6, SourceIPs: tt.ips,
				EventsPerSec: 10, Duration: time.Second, Wait: time.Second, Linger: 100 * time.Millisecond,
				DrainTimeout: 2 * time.Second, Seed: 3,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Enrolled != 6 || rep.EventsAcked == 0 || rep.Unacked != 0 {
				t.Errorf("got enrolled %d, acked %d, unacked %d; want 6, >0, 0", rep.Enrolled, rep.EventsAcked, rep.Unacked)
			}
			f.mu.Lock()
			var got []string
			for ip := range f.sources {
				got = append(got, ip)
			}
			f.mu.Unlock()
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("source addresses: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAgentHonoursMaxBatch: an agent sends at most the relay's max_batch
// records per events request, and still delivers everything.
func TestAgentHonoursMaxBatch(t *testing.T) {
	f := &fakeRelay{sources: map[string]bool{}, maxBatch: 3}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rep, err := agentsim.RunSim(context.Background(), agentsim.SimConfig{
		Proxies: []string{srv.URL}, Key: "k", Agents: 2, EventsPerSec: 50, Duration: time.Second,
		Wait: time.Second, Linger: 200 * time.Millisecond, DrainTimeout: 2 * time.Second, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsAcked < 20 || rep.Unacked != 0 {
		t.Errorf("got %d acknowledged, %d left, want at least 20 and none left", rep.EventsAcked, rep.Unacked)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.biggest == 0 || f.biggest > 3 {
		t.Errorf("largest events request: got %d records, want 1 to 3", f.biggest)
	}
}
