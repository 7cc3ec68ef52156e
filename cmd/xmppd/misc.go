package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/modules/turn"
	"github.com/xmppd/xmppd/modules/version"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// env is what the registry's commands run against from the CLI: --config,
// and the parts admin may not import (the SQL store, the module registry,
// federation).
func (c *cli) env() *admin.Env {
	return &admin.Env{
		ConfigPath:      c.configPath,
		OpenStore:       openStore,
		Migrate:         migrate,
		CheckModules:    modules.Check,
		CheckFederation: checkFederation,
		CheckTurn:       turn.Check,
		// The group chat services and the room they make, for room.
		RoomServices: muc.Services,
		// Uploaded files of a deleted account.
		DeleteAccountData: modules.RemoveAccountData,
	}
}

// openStore opens the configured database, applying pending migrations.
func openStore(ctx context.Context, st config.Storage) (storage.Store, error) {
	db, err := sqlstore.Open(ctx, st)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// migrate applies pending migrations and says how many.
func migrate(ctx context.Context, st config.Storage) (int, error) {
	db, err := sqlstore.Connect(ctx, st)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.Migrate(ctx)
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
