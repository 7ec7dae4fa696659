package relay

import (
	"testing"
	"time"

	"outpost/store"
)

func TestAuthCache(t *testing.T) {
	c := newAuthCache[int](time.Hour)
	c.put("agent", store.HashSecret("right"), 7)
	c.put("bad-hash", "not-hex", 9)
	expired := newAuthCache[int](-time.Second)
	expired.put("agent", store.HashSecret("right"), 7)
	for _, tt := range []struct {
		name   string
		cache  *authCache[int]
		key    string
		secret string
		want   bool
	}{
		{"right secret", c, "agent", "right", true},
		{"wrong secret", c, "agent", "wrong", false},
		{"unknown key", c, "other", "right", false},
		{"hash that is not a digest is never cached", c, "bad-hash", "not-hex", false},
		{"expired entry", expired, "agent", "right", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := tt.cache.get(tt.key, tt.secret)
			if ok != tt.want || (ok && v != 7) {
				t.Errorf("got %d, %v; want ok=%v", v, ok, tt.want)
			}
		})
	}
}
