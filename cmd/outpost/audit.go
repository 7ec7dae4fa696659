package main

import (
	"github.com/spf13/cobra"
)

func init() { register("", newAuditCmd) }

func newAuditCmd(a *app) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--limit N]",
		Short: "Show the audit log (who changed what, when), newest first",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit <= 0 {
				return usageErrorf("invalid --limit %d: must be positive", limit)
			}
			db, err := a.store()
			if err != nil {
				return err
			}
			es, err := db.ListAudit(ctx(cmd), limit)
			if err != nil {
				return err
			}
			if done, err := listed(a, es, "the audit log is empty"); done {
				return err
			}
			var rows [][]string
			for _, e := range es {
				rows = append(rows, []string{fmtTime(e.At), e.Actor, e.Action, e.Target, e.Detail})
			}
			a.printTable([]string{"TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"}, rows)
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "number of entries")
	return cmd
}
