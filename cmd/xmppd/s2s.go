package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/s2s"
)

func (c *cli) s2sCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "s2s", Short: "Federation diagnostics"}
	var from string
	check := &cobra.Command{
		Use:   "check DOMAIN",
		Short: "Resolve, connect and negotiate TLS with DOMAIN; show the certificate verdict and the authentication that would be used",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			remote, err := jid.Parse(args[0])
			if err != nil || remote.Localpart() != "" || remote.Resourcepart() != "" {
				return fmt.Errorf("invalid domain %q", args[0])
			}
			local := cfg.Hosts[0].Domain
			if from != "" {
				if _, ok := cfg.Host(from); !ok {
					return fmt.Errorf("domain %q is not served by this server (see hosts in the config)", from)
				}
				local = from
			}
			cs, err := certs.Load(cfg)
			if err != nil {
				return err
			}
			srv, err := s2s.New(s2s.Options{Config: cfg, Certs: cs, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			rep, err := srv.Check(cmd.Context(), local, remote.Domainpart())
			if err != nil {
				return fmt.Errorf("check %s: %w", remote.Domainpart(), err)
			}
			rep.Print(cmd.OutOrStdout())
			if rep.Auth == "" {
				return errors.New("no usable authentication with " + remote.Domainpart())
			}
			return nil
		},
	}
	check.Flags().StringVar(&from, "from", "", "local domain to connect as (default: the first host)")
	cmd.AddCommand(check)
	return cmd
}
