package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
)

// withUsers is withRosters for an account command.
func (c *cli) withUsers(ctx context.Context, fn func(u admin.Users) error) error {
	return c.withRosters(ctx, func(r admin.Rosters) error { return fn(r.Users) })
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage accounts"}
	add := c.passwordCmd("add JID", "Create an account (asks for the password)", admin.Users.Add, "created")
	passwd := c.passwordCmd("passwd JID", "Change an account's password", admin.Users.SetPassword, "changed the password of")
	del := &cobra.Command{
		Use:   "del JID",
		Short: "Delete an account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd.Context(), func(u admin.Users) error {
				j, err := u.Delete(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", j)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list [DOMAIN]",
		Short: "List accounts, of one domain or of all",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain := ""
			if len(args) == 1 {
				domain = args[0]
			}
			return c.withUsers(cmd.Context(), func(u admin.Users) error {
				list, err := u.List(cmd.Context(), domain)
				if err != nil {
					return err
				}
				for _, j := range list {
					fmt.Fprintln(cmd.OutOrStdout(), j)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, passwd, del, list)
	return cmd
}

// passwordCmd is an account command that takes a new password (add,
// passwd): set applies it and done says, before the account's JID, what
// was done.
func (c *cli) passwordCmd(use, short string, set func(u admin.Users, ctx context.Context, account, password string) (jid.JID, error), done string) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd.Context(), func(u admin.Users) error {
				// Check the JID before asking for a password it would waste.
				if _, err := u.ParseAccount(args[0]); err != nil {
					return err
				}
				pw, err := readPassword(cmd, fromStdin)
				if err != nil {
					return err
				}
				j, err := set(u, cmd.Context(), args[0], pw)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), done, j)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

// readPassword reads the new password from standard input (fromStdin) or
// asks for it twice on the terminal.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: use --password-stdin")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords do not match")
	}
	if len(a) == 0 {
		return "", errors.New("empty password")
	}
	return string(a), nil
}
