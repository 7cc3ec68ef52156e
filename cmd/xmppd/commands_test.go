package main

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/admin"
)

// TestRegistryCommands: every admin registry entry is a cobra command at
// its path, with its help (the one line, and the rest if any), a flag for each non-positional argument (a
// --NAME-stdin for a secret), and cobra's arity check for the positional
// ones.
func TestRegistryCommands(t *testing.T) {
	root := newRoot()
	for _, ac := range admin.Commands() {
		t.Run(ac.Path, func(t *testing.T) {
			cmd, rest, err := root.Find(strings.Fields(ac.Path))
			if err != nil || len(rest) > 0 || cmd.Name() != ac.Name() || cmd.Parent().Name() != ac.Group() {
				t.Fatalf("Find(%q) = %v, %q, %v", ac.Path, cmd.CommandPath(), rest, err)
			}
			if cmd.Short != ac.Short || cmd.RunE == nil {
				t.Errorf("Short %q, want %q; RunE set %v", cmd.Short, ac.Short, cmd.RunE != nil)
			}
			if ac.Long != "" && (!strings.HasPrefix(cmd.Long, ac.Short) || !strings.HasSuffix(cmd.Long, ac.Long)) {
				t.Errorf("Long %q, want Short then %q", cmd.Long, ac.Long)
			}
			var required, positional int
			for _, a := range ac.Args {
				switch {
				case a.Positional:
					positional++
					if a.Required {
						required++
					}
				case a.Secret:
					if cmd.Flags().Lookup(a.Name+"-stdin") == nil || cmd.Flags().Lookup(a.Name) != nil {
						t.Errorf("secret %s: want --%[1]s-stdin and no --%[1]s", a.Name)
					}
				default:
					if f := cmd.Flags().Lookup(a.Name); f == nil || f.Usage != a.Label {
						t.Errorf("no flag --%s with usage %q", a.Name, a.Label)
					}
				}
			}
			args := make([]string, positional+1)
			if err := cmd.Args(cmd, args[:required]); err != nil {
				t.Errorf("refuses %d argument(s): %v", required, err)
			}
			if err := cmd.Args(cmd, args); err == nil {
				t.Errorf("accepts %d argument(s)", len(args))
			}
			if required > 0 {
				if err := cmd.Args(cmd, args[:required-1]); err == nil {
					t.Errorf("accepts %d argument(s)", required-1)
				}
			}
		})
	}
}
