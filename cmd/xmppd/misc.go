package main

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/version"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check or print configuration"}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file (default: --config)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := c.configPath
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return errors.New("no configuration file given")
			}
			cfg, err := config.Load(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("config file %s does not exist", path)
			}
			if err != nil {
				return err
			}
			// The modules' part (IDs, their options) is the registry's
			// to check: the config package does not know the modules.
			if err := modules.Check(cfg); err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
			return nil
		},
	}
	example := &cobra.Command{
		Use:   "example",
		Short: "Print a commented configuration with every option and its default",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.Example())
		},
	}
	cmd.AddCommand(check, example)
	return cmd
}

func (c *cli) dbCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database maintenance"}
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			db, err := sqlstore.Connect(cmd.Context(), cfg.Storage)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s)\n", n)
			return nil
		},
	}
	cmd.AddCommand(migrate)
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "xmppd %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
