package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

// TestAccountRotateKey: rotate-key prints a new key once, the old key no
// longer enrols through a running relay's store, and refusals exit 1 or 2
// with one line and change nothing.
func TestAccountRotateKey(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	oldKey := c.createAccount("acme")

	var got struct {
		Name         string `json:"name"`
		Key          string `json:"verification_key"`
		KeyCreatedAt string `json:"key_created_at"`
	}
	c.json(&got, "account", "rotate-key", "acme")
	if got.Name != "acme" || !strings.HasPrefix(got.Key, "vk_") || got.Key == oldKey || got.KeyCreatedAt == "" {
		t.Fatalf("rotate-key --json: got %+v, want a new vk_ key with its creation time", got)
	}
	r := c.ok("account", "list")
	checkAligned(t, r.stdout, "KEY CREATED")

	// The new key enrols (seedAgents enrols through the store, as the
	// relay does); the old one is refused.
	seedAgents(t, c, got.Key, 1, "new")
	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Enrol(context.Background(), store.EnrolInput{Key: oldKey, Host: store.HostFacts{Hostname: "old", Fingerprint: "fp-old", OS: "linux"}})
	db.Close()
	if store.ErrorCode(err) != store.EUnauthorized {
		t.Errorf("enrol with the rotated key: got %v, want refused as unauthorized", err)
	}
	snap := c.snapshot()
	c.fails(1, `account "globex" not found`, "account", "rotate-key", "globex")
	c.fails(2, "rotate-key", "account", "rotate-key")
	if c.snapshot() != snap {
		t.Error("a refused rotate-key changed the database")
	}
}
