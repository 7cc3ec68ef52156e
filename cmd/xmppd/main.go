// Command xmppd is a federated XMPP server in one binary: `xmppd serve` runs
// it, and the other commands (user, roster, s2s, config, db, version) are
// for operators. This package only wires the CLI to the packages that do the
// work: the operator commands are built from the admin registry.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "xmppd:", err)
		os.Exit(1)
	}
}

// cli holds what the commands share: the --config flag.
type cli struct {
	configPath string
}

func newRoot() *cobra.Command {
	c := &cli{}
	root := &cobra.Command{
		Use:           "xmppd",
		Short:         "A federated XMPP server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&c.configPath, "config", "c", "", "configuration file (default: the development default, data in ./xmppd-data)")
	root.AddCommand(c.serveCmd())
	root.AddCommand(c.registryCmds()...)
	root.AddCommand(versionCmd())
	return root
}

// loadConfig loads --config, or returns the development default when no
// file was named.
func (c *cli) loadConfig() (*config.Config, error) {
	if c.configPath == "" {
		return config.Default(), nil
	}
	return admin.LoadConfig(c.configPath)
}

// newLogger builds the slog logger the config asks for.
func newLogger(cfg config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
