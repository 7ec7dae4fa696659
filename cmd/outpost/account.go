package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"outpost/store"
)

func init() { register("", newAccountCmd) }

func newAccountCmd(a *app) *cobra.Command {
	cmd := group("account", "Create and list accounts and rotate their verification keys")
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create an account and print its verification key (shown once)",
		Args:  nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			acct, key, err := db.CreateAccount(ctx(cmd), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					store.Account
					VerificationKey string `json:"verification_key"`
				}{acct, key})
			}
			a.printf("account %s created\n", clean(acct.Name))
			a.printf("verification key (shown once, keep it safe): %s\n", key)
			return nil
		},
	}, &cobra.Command{
		Use:   "rotate-key NAME",
		Short: "Replace an account's verification key (the old one enrols nothing from now on)",
		Long: "Replace an account's verification key and print the new one (shown once). The old key\n" +
			"enrols no further direct agent; agents already enrolled keep working with their own\n" +
			"credentials, and install commands are not affected.",
		Args: nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			acct, key, err := db.RotateAccountKey(ctx(cmd), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					store.Account
					VerificationKey string `json:"verification_key"`
				}{acct, key})
			}
			a.printf("account %s: new verification key (shown once, keep it safe): %s\n", clean(acct.Name), key)
			a.printf("the previous key enrols nothing from now on; enrolled agents are not affected\n")
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			accts, err := db.ListAccounts(ctx(cmd))
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(nonNil(accts))
			}
			if len(accts) == 0 {
				a.notef("no account yet: create one with 'outpost account create NAME'")
				return nil
			}
			rows := make([][]string, 0, len(accts))
			for _, ac := range accts {
				rows = append(rows, []string{fmt.Sprint(ac.ID), ac.Name, fmtTime(ac.CreatedAt), fmtTime(ac.KeyCreatedAt)})
			}
			a.printTable([]string{"ID", "NAME", "CREATED", "KEY CREATED"}, rows)
			return nil
		},
	})
	return cmd
}
