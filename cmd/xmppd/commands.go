package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/xmppd/xmppd/admin"
)

// registryCmds builds the operator commands from the admin registry: a
// cobra command per admin.Command, under one per group. Everything a
// command does is the registry's; what is cobra's is only the shape of the
// command line (positional arguments, flags, arity) and the terminal.
func (c *cli) registryCmds() []*cobra.Command {
	groups := map[string]*cobra.Command{}
	var out []*cobra.Command
	for _, g := range admin.Groups() {
		groups[g.Name] = &cobra.Command{Use: g.Name, Short: g.Short}
		out = append(out, groups[g.Name])
	}
	for _, ac := range admin.Commands() {
		parent, ok := groups[ac.Group()]
		if !ok {
			panic("xmppd: admin command " + ac.Path + " is in no group")
		}
		parent.AddCommand(c.adapt(ac))
	}
	return out
}

// adapt is the one cobra adapter: positional Args become the arguments (in
// the usage line by their names in capitals, optional ones in brackets),
// the others flags, and each secret a --NAME-stdin flag. The arity check is
// cobra's, so that its error lines ("accepts 1 arg(s)") stay as they were.
func (c *cli) adapt(ac *admin.Command) *cobra.Command {
	use := []string{ac.Name()}
	var required, optional int
	for _, a := range ac.Args {
		switch {
		case !a.Positional:
		case a.Required:
			use = append(use, strings.ToUpper(a.Name))
			required++
		default:
			use = append(use, "["+strings.ToUpper(a.Name)+"]")
			optional++
		}
	}
	cmd := &cobra.Command{Use: strings.Join(use, " "), Short: ac.Short, Args: arity(required, optional)}
	if ac.Long != "" {
		cmd.Long = ac.Short + ".\n\n" + ac.Long
	}
	fromStdin := map[string]*bool{}
	for _, a := range ac.Args {
		switch {
		case a.Positional:
		case a.Secret:
			fromStdin[a.Name] = cmd.Flags().Bool(a.Name+"-stdin", false, "read the "+strings.ToLower(a.Label)+" from the first line of standard input")
		case a.Kind == admin.Bool:
			cmd.Flags().Bool(a.Name, a.Default == "true", a.Label)
		case a.Repeated:
			cmd.Flags().StringArray(a.Name, nil, a.Label)
		default:
			cmd.Flags().String(a.Name, a.Default, a.Label)
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		env := c.env()
		in, err := ac.Parse(env, rawArgs(cmd, ac, args))
		if err != nil {
			return err
		}
		// Asked for only now, so that a mistyped JID wastes no password.
		for _, a := range ac.Args {
			if !a.Secret {
				continue
			}
			v, err := readSecret(cmd, a, *fromStdin[a.Name])
			if err != nil {
				return err
			}
			if err := in.SetSecret(a.Name, v); err != nil {
				return err
			}
		}
		res, err := ac.Exec(cmd.Context(), env, in)
		for _, w := range res.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
		}
		fmt.Fprint(cmd.OutOrStdout(), res.Text)
		return err
	}
	return cmd
}

// arity is the cobra check for required positional arguments followed by
// optional ones.
func arity(required, optional int) cobra.PositionalArgs {
	switch {
	case required == 0 && optional == 0:
		return cobra.NoArgs
	case optional == 0:
		return cobra.ExactArgs(required)
	case required == 0:
		return cobra.MaximumNArgs(optional)
	}
	return cobra.RangeArgs(required, required+optional)
}

// rawArgs collects the command line's values by argument name: the
// positional ones in order, and the flags that were given.
func rawArgs(cmd *cobra.Command, ac *admin.Command, args []string) map[string][]string {
	raw := map[string][]string{}
	for _, a := range ac.Args {
		switch {
		case a.Secret:
		case a.Positional:
			if len(args) > 0 {
				raw[a.Name], args = args[:1], args[1:]
			}
		case !cmd.Flags().Changed(a.Name):
		case a.Repeated:
			raw[a.Name], _ = cmd.Flags().GetStringArray(a.Name)
		default:
			raw[a.Name] = []string{cmd.Flags().Lookup(a.Name).Value.String()}
		}
	}
	return raw
}

// readSecret reads a secret argument (a new password) from the first line
// of standard input (fromStdin) or asks for it twice on the terminal.
func readSecret(cmd *cobra.Command, a admin.Arg, fromStdin bool) (string, error) {
	what := strings.ToLower(a.Label)
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		v := strings.TrimRight(line, "\r\n")
		if v == "" {
			return "", errors.New("empty " + what)
		}
		return v, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("standard input is not a terminal: use --%s-stdin", a.Name)
	}
	fmt.Fprint(cmd.ErrOrStderr(), a.Label+": ")
	first, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
	again, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	if string(first) != string(again) {
		return "", fmt.Errorf("the %ss do not match", what)
	}
	if len(first) == 0 {
		return "", errors.New("empty " + what)
	}
	return string(first), nil
}
