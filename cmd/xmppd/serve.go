package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppd/xmppd/modules/version"
	"github.com/xmppd/xmppd/server"
)

// shutdownGrace is how long sessions get to close on SIGINT/SIGTERM.
const shutdownGrace = 10 * time.Second

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			for _, w := range cfg.Warnings {
				log.Warn(w)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("starting xmppd", slog.String("version", version.String()), slog.String("config", c.configPathOrDefault()))
			srv, err := server.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
}

func (c *cli) configPathOrDefault() string {
	if c.configPath == "" {
		return "(development default)"
	}
	return c.configPath
}
