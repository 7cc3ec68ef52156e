package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/storage"
)

// Env is what a Command runs against, given by its front end: where the
// configuration comes from, and the parts of the server admin may not import
// itself (DESIGN.md: the store's implementation, the module registry and
// federation are wired by cmd and server). The CLI builds one per run; a
// control socket would give the running server's. An Env caches the
// configuration it loaded and is not safe for concurrent use.
type Env struct {
	// ConfigPath is the configuration file; "" means the development
	// default (config.Default).
	ConfigPath string
	// OpenStore opens the configured database with its schema brought up
	// to date. The command closes it.
	OpenStore func(ctx context.Context, cfg config.Storage) (storage.Store, error)
	// Migrate applies pending schema migrations and says how many.
	Migrate func(ctx context.Context, cfg config.Storage) (applied int, err error)
	// CheckModules checks the modules part of a configuration (module IDs,
	// their options blocks) against the module registry, which admin must
	// not import; its errors name the file and line. Nil checks nothing.
	CheckModules func(cfg *config.Config) error
	// CheckFederation probes a remote domain the way this server would
	// federate with it (s2s check). It is injected because admin must not
	// import s2s; the command around it (arguments, verdict, exit status) is
	// admin's.
	CheckFederation func(ctx context.Context, cfg *config.Config, local, remote string) (FederationReport, error)
	// CheckTurn runs `check turn` (turn.Check): a report, and whether
	// the relay worked; injected since admin must not import modules.
	CheckTurn func(ctx context.Context, cfg *config.Config, account string) (report string, ok bool, err error)
	// RoomServices says which multi-user chat services cfg runs and what
	// room they make (muc.Services), for the room commands; injected since
	// admin must not import modules.
	RoomServices func(cfg *config.Config) (RoomServices, error)
	// DeleteAccountData removes a deleted account's data kept outside the
	// database (modules.RemoveAccountData: uploaded files); nil removes
	// none.
	DeleteAccountData func(ctx context.Context, cfg *config.Config, account jid.JID) error

	cfg *config.Config
}

// FederationReport is what CheckFederation found.
type FederationReport struct {
	// Auth is the authentication this server would use with the remote
	// domain, or "" if none would work.
	Auth string
	// Text is the report for a terminal.
	Text string
	// Details is the federation code's own report, for front ends that
	// render it themselves.
	Details any
}

// Config returns the configuration the commands act on, loaded from
// ConfigPath on first use.
func (env *Env) Config() (*config.Config, error) {
	if env.cfg != nil {
		return env.cfg, nil
	}
	if env.ConfigPath == "" {
		env.cfg = config.Default()
		return env.cfg, nil
	}
	cfg, err := LoadConfig(env.ConfigPath)
	if err != nil {
		return nil, err
	}
	env.cfg = cfg
	return cfg, nil
}

// LoadConfig loads a configuration file, saying plainly when it does not
// exist (the operator's most common mistake) rather than with an open(2)
// error.
func LoadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config file %s does not exist", path)
	}
	return cfg, err
}

// withRosters opens the configured database and runs fn on it.
func (env *Env) withRosters(ctx context.Context, fn func(r Rosters) error) error {
	cfg, err := env.Config()
	if err != nil {
		return err
	}
	if env.OpenStore == nil {
		return errors.New("admin: no store to open")
	}
	db, err := env.OpenStore(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer db.Close()
	u := Users{Config: cfg, Users: db.Users(), Store: db}
	if env.DeleteAccountData != nil {
		u.DeleteData = func(ctx context.Context, account jid.JID) error { return env.DeleteAccountData(ctx, cfg, account) }
	}
	return fn(Rosters{Users: u, Store: db})
}

// withArchives opens the configured database and runs fn on its archives.
func (env *Env) withArchives(ctx context.Context, fn func(a Archives) error) error {
	return env.withRosters(ctx, func(r Rosters) error {
		return fn(Archives{Users: r.Users, Store: r.Store})
	})
}

// withRooms opens the configured database and runs fn on the rooms of
// the configured multi-user chat services.
func (env *Env) withRooms(ctx context.Context, fn func(r Rooms) error) error {
	cfg, err := env.Config()
	if err != nil {
		return err
	}
	if env.RoomServices == nil {
		return errors.New("admin: no multi-user chat services to act on")
	}
	services, err := env.RoomServices(cfg)
	if err != nil {
		return err
	}
	return env.withRosters(ctx, func(r Rosters) error {
		return fn(Rooms{Services: services, Store: r.Store})
	})
}
