package main

import (
	"context"

	"github.com/spf13/cobra"

	"outpost/store"
)

func init() { register("", newReleaseCmd) }

func newReleaseCmd(a *app) *cobra.Command {
	cmd := group("release", "Publish and list releases (what 'proxy upgrade' upgrades to)")
	var notes, sha string
	add := &cobra.Command{
		Use:   "add VERSION [--notes T]",
		Short: "Publish a release; online proxy servers older than the latest one can be upgraded",
		Args:  nargs(1, 1, "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			r := store.Release{Version: args[0], Notes: notes, SHA256: sha}
			if err := db.AddRelease(ctx(cmd), r); err != nil {
				return err
			}
			latest, err := db.LatestRelease(ctx(cmd))
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"version": r.Version, "notes": r.Notes, "sha256": r.SHA256, "latest": latest})
			}
			a.printf("release %s published (latest: %s)\n", clean(r.Version), clean(latest))
			return nil
		},
	}
	add.Flags().StringVar(&notes, "notes", "", "release notes")
	add.Flags().StringVar(&sha, "sha256", "", "hex SHA-256 of the release package")
	list := &cobra.Command{
		Use:   "list",
		Short: "List published releases, newest first",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			rs, err := listReleases(ctx(cmd), db)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(nonNil(rs))
			}
			if len(rs) == 0 {
				a.notef("no release published yet: outpost release add VERSION")
				return nil
			}
			var rows [][]string
			for i, r := range rs {
				latest := ""
				if i == 0 {
					latest = "yes"
				}
				rows = append(rows, []string{r.Version, fmtTime(r.PublishedAt), latest, r.Notes})
			}
			a.printTable([]string{"VERSION", "PUBLISHED", "LATEST", "NOTES"}, rows)
			return nil
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}

// listReleases reads the releases table directly (read-only), newest
// version first.
func listReleases(ctx context.Context, db *store.DB) ([]store.Release, error) {
	return db.ListReleases(ctx)
}
