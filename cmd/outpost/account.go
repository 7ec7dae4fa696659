package main

import (
	"context"
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
			return a.accountKey(cmd, args[0], (*store.DB).CreateAccount,
				"account %s created\nverification key (shown once, keep it safe): %s\n")
		},
	}, &cobra.Command{
		Use:   "rotate-key NAME",
		Short: "Replace an account's verification key (the old one enrols nothing from now on)",
		Long: "Replace an account's verification key and print the new one (shown once). The old key\n" +
			"enrols no further direct agent; agents already enrolled keep working with their own\n" +
			"credentials, and install commands are not affected.",
		Args: nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.accountKey(cmd, args[0], (*store.DB).RotateAccountKey,
				"account %s: new verification key (shown once, keep it safe): %s\n"+
					"the previous key enrols nothing from now on; enrolled agents are not affected\n")
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
			if done, err := listed(a, accts, "no account yet: create one with 'outpost account create NAME'"); done {
				return err
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

// accountKey runs an account change that makes a verification key (create,
// rotate-key) and prints the account with the key, shown this once.
func (a *app) accountKey(cmd *cobra.Command, name string,
	change func(*store.DB, context.Context, string) (store.Account, string, error), text string) error {
	db, err := a.store()
	if err != nil {
		return err
	}
	acct, key, err := change(db, ctx(cmd), name)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(struct {
			store.Account
			VerificationKey string `json:"verification_key"`
		}{acct, key})
	}
	a.printf(text, clean(acct.Name), key)
	return nil
}
