package main

import (
	"context"

	"github.com/spf13/cobra"

	"outpost/store"
)

func init() { register("", newReleaseCmd) }

func newReleaseCmd(a *app) *cobra.Command {
	cmd := group("release", "Sign, publish, list and delete releases (what 'proxy upgrade' upgrades to)")
	cmd.AddCommand(newReleaseKeygenCmd(a), newReleaseAddCmd(a), newReleaseListCmd(a), newReleaseDeleteCmd(a))
	return cmd
}

// newReleaseAddCmd is release add: publish a signed release.
func newReleaseAddCmd(a *app) *cobra.Command {
	var notes, file, key string
	add := &cobra.Command{
		Use:   "add VERSION --file PATH --key FILE [--notes T]",
		Short: "Publish a release with its package; online proxy servers older than the latest one can be upgraded",
		Long: `Publish a release. VERSION is a semantic version, MAJOR.MINOR.PATCH with an
optional -prerelease (1.2.0, 1.3.0-rc.1); a leading "v" is dropped (v1.2.0 is
1.2.0), and anything else ("v1.0", "1.2") is refused. Versions compare as
semantic versions: 1.10.0 is newer than 1.9.0, and 1.3.0-rc.1 is older than
1.3.0.

--file is the release package: it is copied to DATA/releases/VERSION on this
host and its SHA-256 recorded. --key is the signing key file made by
'outpost release keygen': the release is signed over its version and that
SHA-256, and refused when no release key is set or the file is not its
private half. Relays download the package through the management host and
stage it only when the signature verifies against the release public key
they got at join and the package matches the SHA-256.`,
		Args: nargs(1, 1, "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErrorf("--file PATH is required: a release needs its package")
			}
			if key == "" {
				return usageErrorf("--key FILE is required: a release is signed with the key made by 'outpost release keygen'")
			}
			db, err := a.store()
			if err != nil {
				return err
			}
			r, err := db.PublishSignedRelease(ctx(cmd), store.Release{Version: args[0], Notes: notes}, file, key)
			if err != nil {
				return err
			}
			latest, err := db.LatestRelease(ctx(cmd))
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"version": r.Version, "notes": r.Notes, "sha256": r.SHA256, "signature": r.Signature, "latest": latest})
			}
			a.printf("release %s published and signed (sha256 %s; latest: %s)\n", clean(r.Version), r.SHA256, clean(latest))
			return nil
		},
	}
	add.Flags().StringVar(&notes, "notes", "", "release notes")
	add.Flags().StringVar(&file, "file", "", "the release package (copied to DATA/releases/VERSION)")
	add.Flags().StringVar(&key, "key", "", "the release signing key file (outpost release keygen --out FILE)")
	return add
}

// newReleaseListCmd is release list, newest first.
func newReleaseListCmd(a *app) *cobra.Command {
	return &cobra.Command{
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
			if done, err := listed(a, rs, "no release published yet: outpost release add VERSION --file PATH --key FILE"); done {
				return err
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
}

// newReleaseDeleteCmd is release delete VERSION.
func newReleaseDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete VERSION",
		Short: "Delete a release and its package (refused while a proxy server is upgrading to it)",
		Args:  nargs(1, 1, "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			if err := db.DeleteRelease(ctx(cmd), args[0]); err != nil {
				return err
			}
			latest, err := db.LatestRelease(ctx(cmd))
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"deleted": "release", "version": args[0], "latest": latest})
			}
			a.printf("release %s deleted (latest: %s)\n", clean(args[0]), orDash(clean(latest)))
			return nil
		},
	}
}

// newReleaseKeygenCmd is release keygen: make the signing key, or rotate
// it (--rotate).
func newReleaseKeygenCmd(a *app) *cobra.Command {
	var out, oldKey string
	var rotate bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE | keygen --rotate --key OLD_FILE --out NEW_FILE",
		Short: "Make the release signing key (or rotate it): the private key to FILE, the public key to the store",
		Long: `Make the ed25519 key that signs releases. The private key is written to
--out (mode 0600, never overwritten); keep it off the relays and outside the
data directory, which backups copy. The public key is stored: relays get it
when they join (and with each heartbeat if they joined before it existed),
agents when they enrol and check in, and they accept only releases it
verifies. There is one release key at a time: keygen alone is refused once
it is set.

--rotate replaces it: --key is the current private key file, --out the new
one. The new public key is stored signed by the current key, so every relay
and agent that trusts the old key accepts the new one through that
signature (the release key chain), while a key they were not given is
refused. From then on 'release add' needs the new key; releases signed
before stay valid. Audited as release.key.rotate.`,
		Args: nargs(0, 0, ""),
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("--out FILE is required: where the private signing key goes (outside the data directory)")
			}
			if rotate != (oldKey != "") {
				if rotate {
					return usageErrorf("--rotate needs --key OLD_FILE: the current private key signs the new one")
				}
				return usageErrorf("--key applies to --rotate only (release add takes the key to sign with)")
			}
			db, err := a.store()
			if err != nil {
				return err
			}
			var pub string
			if rotate {
				pub, err = db.RotateReleaseKey(ctx(c), oldKey, out)
			} else {
				pub, err = db.CreateReleaseKey(ctx(c), out)
			}
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"public_key": pub, "private_key_file": out, "rotated": rotate})
			}
			if rotate {
				a.printf("release signing key rotated: new private key in %s (sign releases with it from now on: release add --key %s), new public key %s, signed by the old key\n",
					clean(out), shellQuote(out), pub)
				return nil
			}
			a.printf("release signing key made: private key in %s (keep it safe; release add --key), public key %s\n", clean(out), pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file for the private signing key (created 0600, never overwritten)")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the release key with a new one signed by the current one (--key)")
	cmd.Flags().StringVar(&oldKey, "key", "", "with --rotate: the current private signing key file")
	return cmd
}

// listReleases reads the releases table directly (read-only), newest
// version first.
func listReleases(ctx context.Context, db *store.DB) ([]store.Release, error) {
	return db.ListReleases(ctx)
}
