package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestInstallCreateAndRevoke(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	c := f.common(false)
	hs := newHarness(t, c, 120, 36)
	hs.send(SwitchMsg{NewInstallView(c)})
	hs.wantScreen("press n to create one")
	hs.keys("n")
	form := dialogAs[*Form](t, hs)
	form.Set("group", "web")
	form.Set("expires", "2d")
	hs.keys("enter")
	kd := dialogAs[*keyDialog](t, hs)
	hs.wantScreen("the key is shown only now", "outpost agent run --proxy", "--key ik_")
	hs.keys("y")
	if len(hs.copied) != 1 || !strings.Contains(hs.copied[0], "--key ik_") || hs.copied[0] != kd.command {
		t.Fatalf("copied %q, want the whole command %q", hs.copied, kd.command)
	}
	ics, err := f.db.ListInstallCommands(f.ctx, f.acct.ID)
	if err != nil || len(ics) != 1 {
		t.Fatalf("ListInstallCommands: %v %+v", err, ics)
	}
	ic := ics[0]
	if ic.ClusterID != gz.ID || ic.Group != "web" || ic.OS != "linux" || !ic.ExpiresAt.Equal(f.clock.Now().Add(48*time.Hour)) {
		t.Errorf("created %+v, want gz, group web, linux, 48 h", ic)
	}
	if !strings.Contains(kd.command, "--key "+ic.KeyPrefix) {
		t.Errorf("command %q lacks the key", kd.command)
	}
	hs.keys("esc")
	hs.wantScreen("gz", "web", "active", "command "+itoaF(ic.ID))

	// A bad expiry is refused in the form.
	hs.keys("n")
	form = dialogAs[*Form](t, hs)
	form.Set("expires", "soon")
	hs.keys("enter")
	if !strings.Contains(form.Err(), `duration "soon"`) {
		t.Errorf("form error %q, want the duration refusal", form.Err())
	}
	hs.keys("esc")

	hs.keys("R")
	confirm := dialogAs[*Choice](t, hs)
	if confirm.Focused() != "Cancel" {
		t.Fatalf("revoke focus %q", confirm.Focused())
	}
	hs.keys("right", "enter")
	ics, _ = f.db.ListInstallCommands(f.ctx, f.acct.ID)
	if !ics[0].Revoked {
		t.Fatal("not revoked")
	}
	hs.wantScreen("revoked")
	hs.keys("R", "right", "enter")
	if got := hs.flash(); got != "install command "+itoaF(ic.ID)+" is already revoked" {
		t.Errorf("second revoke: flash %q, want the store's refusal", got)
	}
}

func itoaF(n int64) string { return fmt.Sprint(n) }

func TestSettingsEdit(t *testing.T) {
	f := newFleet(t)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	hs.send(SwitchMsg{NewSettingsView(c)})
	hs.wantScreen("offline_after", "12h", "bind_batch_gap", "1m", "poll_timeout")
	agFrame(t, hs.screen(), 100, 30)

	edit := func(row int, value string) *Form {
		hs.keys("g")
		for i := 0; i < row; i++ {
			hs.keys("down")
		}
		hs.keys("e")
		form := dialogAs[*Form](t, hs)
		form.Set("value", value)
		hs.keys("enter")
		return form
	}
	t.Run("valid", func(t *testing.T) {
		edit(4, "2m")
		if hs.root.Dialog() != nil {
			t.Fatalf("form still open:\n%s", hs.screen())
		}
		if got := f.db.Settings().BindBatchGap; got != 2*time.Minute {
			t.Errorf("bind_batch_gap = %s, want 2m", got)
		}
		hs.wantScreen("bind_batch_gap = 2m")
	})
	refusals := []struct {
		name       string
		row        int
		value      string
		want       string
		storeCheck bool
	}{
		{"not a duration", 0, "soon", `duration "soon"`, false},
		{"inventory not shorter than offline", 1, "13h", "must be shorter than offline_after", true},
		{"zero", 2, "0s", "must be positive", false},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before, audits := f.db.Settings(), f.audits()
			form := edit(r.row, r.value)
			if !strings.Contains(form.Err(), r.want) {
				t.Errorf("form error %q, want %q", form.Err(), r.want)
			}
			if hs.root.Dialog() == nil {
				t.Error("the form closed on a refusal")
			}
			if f.db.Settings() != before || f.audits() != audits {
				t.Error("a refused setting changed the store")
			}
			hs.keys("esc")
		})
	}
}
