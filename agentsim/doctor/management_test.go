package doctor

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDoctorInstallKey(t *testing.T) {
	ctx := context.Background()
	const key = "ik_0123456789abcdef"
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cmds := func(ics ...InstallCommand) func(context.Context) ([]InstallCommand, error) {
		return func(context.Context) ([]InstallCommand, error) { return ics, nil }
	}
	mine := InstallCommand{ID: 7, Cluster: "edge", KeyPrefix: key[:10], ExpiresAt: exp, Uses: 3}
	other := InstallCommand{ID: 8, KeyPrefix: "ik_zzzzzzz", ExpiresAt: exp}
	revoked, expired := mine, mine
	revoked.Revoked = true
	expired.Expired = true
	tests := []struct {
		name    string
		key     string
		list    func(context.Context) ([]InstallCommand, error)
		verdict Verdict
		fix     []string
		detail  string
	}{
		{"valid", key, cmds(other, mine), VerdictOK, nil, "install command 7 (cluster edge) is valid until 2030-01-02T03:04:05Z, used 3"},
		{"revoked", key, cmds(other, revoked), VerdictFail, []string{"outpost installcmd create --cluster edge"}, "was revoked"},
		{"expired", key, cmds(expired), VerdictFail, []string{"outpost installcmd create --cluster edge"}, "expired at 2030-01-02T03:04:05Z"},
		{"unknown", key, cmds(other), VerdictFail, []string{"outpost installcmd create"}, "no install command has this key"},
		{"too short", "ik_1", cmds(mine), VerdictFail, []string{"outpost installcmd create"}, "too short"},
		{"not the management host", key, nil, VerdictSkip, nil, "management host"},
		{"no key", "", cmds(mine), VerdictSkip, nil, "no --key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Doctor{Key: tt.key, InstallCommands: tt.list}
			c := d.CheckKey(ctx)
			drExpect(t, c, tt.verdict, tt.fix...)
			if !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", c.Detail, tt.detail)
			}
			if strings.Contains(c.Target+c.Detail+c.Fix, key) {
				t.Errorf("the whole key is printed: %+v", c)
			}
		})
	}
}
