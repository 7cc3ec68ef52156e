package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/router/subscription"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// withRosters loads the configuration, opens its database (applying
// pending migrations) and runs an operator command on it; the account
// commands use it through withUsers.
func (c *cli) withRosters(ctx context.Context, fn func(r admin.Rosters) error) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	db, err := sqlstore.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(admin.Rosters{Users: admin.Users{Config: cfg, Users: db.Users(), Store: db}, Store: db})
}

func (c *cli) rosterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "roster", Short: "Manage rosters (shared rosters for an organisation)"}
	list := &cobra.Command{
		Use:   "list JID",
		Short: "Show an account's roster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withRosters(cmd.Context(), func(r admin.Rosters) error {
				items, err := r.List(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				for _, it := range items {
					sub, ask, approved := subscription.ClientView(it)
					line := fmt.Sprintf("%s\tsubscription=%s", it.Contact, sub)
					if ask != "" {
						line += " ask=" + ask
					}
					if approved {
						line += " approved"
					}
					if it.PendingIn {
						line += " pending-in"
					}
					if it.Name != "" {
						line += fmt.Sprintf("\tname=%q", it.Name)
					}
					if len(it.Groups) > 0 {
						line += fmt.Sprintf("\tgroups=%s", strings.Join(it.Groups, ","))
					}
					fmt.Fprintln(cmd.OutOrStdout(), line)
				}
				return nil
			})
		},
	}
	var name string
	var groups []string
	add := &cobra.Command{
		Use:   "add JID CONTACT",
		Short: "Add CONTACT to JID's roster with a mutual subscription (both local accounts)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withRosters(cmd.Context(), func(r admin.Rosters) error {
				if err := r.Add(cmd.Context(), args[0], args[1], name, groups); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s and %s are now subscribed to each other\n", args[0], args[1])
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "the contact's name in the roster")
	add.Flags().StringArrayVar(&groups, "group", nil, "a roster group (repeat for several)")
	del := &cobra.Command{
		Use:   "del JID CONTACT",
		Short: "Remove CONTACT from JID's roster, cancelling the subscriptions",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withRosters(cmd.Context(), func(r admin.Rosters) error {
				if err := r.Delete(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s from the roster of %s\n", args[1], args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}
