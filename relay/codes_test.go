package relay_test

import (
	"testing"

	"outpost/relay/wire"
	"outpost/store"
)

// Store refusals reach the wire with their code unchanged (writeErr of
// store.ErrorCode), so the two vocabularies must spell each code the same.
func TestStoreCodesAreWireCodes(t *testing.T) {
	cases := []struct{ name, store, wire string }{
		{"not found", store.ENotFound, wire.CodeNotFound},
		{"conflict", store.EConflict, wire.CodeConflict},
		{"invalid", store.EInvalid, wire.CodeInvalid},
		{"forbidden", store.EForbidden, wire.CodeForbidden},
		{"limit", store.ELimit, wire.CodeLimit},
		{"unauthorized", store.EUnauthorized, wire.CodeUnauthorized},
		{"internal", store.EInternal, wire.CodeInternal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.store != c.wire {
				t.Fatalf("store code %q, wire code %q: want equal", c.store, c.wire)
			}
		})
	}
}
