package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/s2s"
)

// checkFederation is admin.Env.CheckFederation, the probe behind `xmppd
// s2s check`: it lives here because admin may not import s2s (DESIGN.md),
// while the command itself (arguments, --from, the verdict) is declared in
// the admin registry with the others.
func checkFederation(ctx context.Context, cfg *config.Config, local, remote string) (admin.FederationReport, error) {
	cs, err := certs.Load(cfg)
	if err != nil {
		return admin.FederationReport{}, err
	}
	srv, err := s2s.New(s2s.Options{Config: cfg, Certs: cs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return admin.FederationReport{}, err
	}
	rep, err := srv.Check(ctx, local, remote)
	if err != nil {
		return admin.FederationReport{}, fmt.Errorf("check %s: %w", remote, err)
	}
	var text strings.Builder
	rep.Print(&text)
	return admin.FederationReport{Auth: rep.Auth, Text: text.String(), Details: rep}, nil
}
