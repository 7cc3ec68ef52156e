package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// A CommandGroup is a word that commands share the start of their Path
// with ("user"), and what the group is for.
type CommandGroup struct {
	Name  string
	Short string
}

// Groups returns the command groups, in the order the CLI shows them.
func Groups() []CommandGroup {
	return []CommandGroup{
		{Name: "user", Short: "Manage accounts"},
		{Name: "roster", Short: "Manage rosters (shared rosters for an organisation)"},
		{Name: "archive", Short: "Message archives (XEP-0313): statistics and purging"},
		{Name: "room", Short: "Manage the persistent rooms of the group chat service (XEP-0045)"},
		{Name: "s2s", Short: "Federation diagnostics"},
		{Name: "config", Short: "Check or print configuration"},
		{Name: "db", Short: "Database maintenance"},
		{Name: "check", Short: "Check the services this server runs"},
	}
}

// Commands returns every sysadmin operation, in the order the CLI shows
// them. Each call returns new values: a front end may not change the
// registry for another.
func Commands() []*Command {
	return []*Command{
		passwordCommand("user add", "Create an account (asks for the password)", Users.Add, "created"),
		passwordCommand("user passwd", "Change an account's password", Users.SetPassword, "changed the password of"),
		{
			Path: "user del", Short: "Delete an account", NeedsConfig: true,
			Args: []Arg{accountArg},
			Run: func(ctx context.Context, env *Env, in Input) (res Result, err error) {
				err = env.withRosters(ctx, func(r Rosters) error {
					j, err := r.Users.Delete(ctx, in.String("jid"))
					if err != nil {
						return err
					}
					res = textf(j, "deleted %s", j)
					return nil
				})
				return res, err
			},
		},
		{
			Path: "user list", Short: "List accounts, of one domain or of all", NeedsConfig: true,
			Args: []Arg{{Name: "domain", Label: "Served domain (default: all)", Kind: Domain, Positional: true}},
			Run:  listUsers,
		},
		{
			Path: "roster list", Short: "Show an account's roster", NeedsConfig: true,
			Args: []Arg{accountArg},
			Run:  listRoster,
		},
		{
			Path: "roster add", Short: "Add CONTACT to JID's roster with a mutual subscription (both local accounts)", NeedsConfig: true,
			Args: []Arg{
				accountArg, contactArg,
				{Name: "name", Label: "the contact's name in the roster", Kind: String},
				{Name: "group", Label: "a roster group (repeat for several)", Kind: String, Repeated: true},
			},
			Run: func(ctx context.Context, env *Env, in Input) (Result, error) {
				err := env.withRosters(ctx, func(r Rosters) error {
					return r.Add(ctx, in.String("jid"), in.String("contact"), in.String("name"), in.Strings("group"))
				})
				if err != nil {
					return Result{}, err
				}
				return textf(nil, "%s and %s are now subscribed to each other", in.String("jid"), in.String("contact")), nil
			},
		},
		{
			Path: "roster del", Short: "Remove CONTACT from JID's roster, cancelling the subscriptions", NeedsConfig: true,
			Args: []Arg{accountArg, contactArg},
			Run: func(ctx context.Context, env *Env, in Input) (Result, error) {
				err := env.withRosters(ctx, func(r Rosters) error {
					return r.Delete(ctx, in.String("jid"), in.String("contact"))
				})
				if err != nil {
					return Result{}, err
				}
				return textf(nil, "removed %s from the roster of %s", in.String("contact"), in.String("jid")), nil
			},
		},
		{
			Path: "archive stats", Short: "Show the messages, bytes and first and last message of an account's archive, or of every archive", NeedsConfig: true,
			Args: []Arg{{Name: "jid", Label: "Account (user@domain; default: every archive)", Kind: Account, Positional: true}},
			Run:  archiveStats,
		},
		{
			Path: "archive purge", Short: "Delete an account's archived messages, all of them (with --yes) or those archived before --before", NeedsConfig: true,
			Args: []Arg{
				accountArg,
				{Name: "before", Label: "delete only messages archived before this date (2024-05-01) or time (2024-05-01T12:00:00Z)", Kind: Time},
				{Name: "yes", Label: "delete the whole archive when --before is not given", Kind: Bool},
			},
			Check: checkPurgeAll,
			Run:   archivePurge,
		},
		{
			Path: "room list", Short: "List the persistent rooms of a group chat service, or of every one: JID, persistent or temporary, members-only or open, number of affiliations, name", NeedsConfig: true,
			Args: []Arg{{Name: "service", Label: "Group chat service (conference.DOMAIN; default: all)", Kind: Domain, Positional: true}},
			Run:  listRooms,
		},
		{
			Path: "room create", Short: "Create a persistent room with the service's defaults and no owner (room affiliation adds one)", NeedsConfig: true,
			Long: "The room is persistent, as ejabberdctl create_room makes it: a temporary room with no occupants would vanish at once. " +
				"Everything but --name and --members-only is what the service gives a room a user creates (module_options.muc). " +
				"It has no owner: give it one with `xmppd room affiliation ROOM JID owner`. " +
				"A running server finds the new room when the first stanza for it arrives, with no restart; its disco items list the room from then on.",
			Args: []Arg{
				roomArg,
				{Name: "name", Label: "the room's name (muc#roomconfig_roomname)", Kind: String},
				{Name: "members-only", Label: "only members may enter (muc#roomconfig_membersonly)", Kind: Bool},
				{Name: "persistent", Label: "keep the room when it is empty; rooms made here always are", Kind: Bool, Default: "true"},
			},
			Check: checkPersistent,
			Run:   createRoom,
		},
		{
			Path: "room destroy", Short: "Delete a room, its affiliations and its archive", NeedsConfig: true,
			Long: roomRestart + " Until then its occupants stay in it and are not told; to destroy a room in use, destroy it from an owner's client (XEP-0045 §10.9).",
			Args: []Arg{roomArg},
			Run:  destroyRoom,
		},
		{
			Path: "room affiliation", Short: "Make JID owner, admin, member or outcast of a room, or remove its affiliation (none)", NeedsConfig: true,
			Long: "JID is a bare JID or a domain. The last owner of a room stays one until another is made. " + roomRestart,
			Args: []Arg{
				roomArg,
				{Name: "jid", Label: "the bare JID (user@domain) or domain affiliated", Kind: JID, Required: true, Positional: true},
				{Name: "affiliation", Label: "owner, admin, member, outcast or none", Kind: String, Required: true, Positional: true},
			},
			Check: func(_ *Env, in Input) error { return checkAffiliation(in.String("affiliation")) },
			Run:   setRoomAffiliation,
		},
		{
			Path:        "s2s check",
			Short:       "Resolve, connect and negotiate TLS with DOMAIN; show the certificate verdict and the authentication that would be used",
			NeedsConfig: true,
			Args: []Arg{
				{Name: "domain", Label: "Remote domain", Kind: Domain, Required: true, Positional: true},
				{Name: "from", Label: "local domain to connect as (default: the first host)", Kind: String},
			},
			Check: checkFrom,
			Run:   checkFederation,
		},
		{
			Path: "config check", Short: "Validate a configuration file (default: --config)",
			Args: []Arg{{Name: "file", Label: "Configuration file (default: --config)", Kind: File, Positional: true}},
			Run:  checkConfig,
		},
		{
			Path: "config example", Short: "Print a commented configuration with every option and its default",
			Run: func(context.Context, *Env, Input) (Result, error) {
				return Result{Text: config.Example()}, nil
			},
		},
		{
			Path: "db migrate", Short: "Apply pending schema migrations", NeedsConfig: true,
			Run: migrate,
		},
		{
			Path: "check turn", Short: "Allocate a relay over UDP and TCP with credentials from the configured secret and send data through it to a local echo peer", NeedsConfig: true,
			Args: []Arg{{Name: "from", Label: "account (user@domain) the credentials are for (default: turn-check@ the first host)", Kind: String}},
			Run:  checkTurn,
		},
	}
}

// Lookup returns the command of a path ("user add").
func Lookup(path string) (*Command, bool) {
	cmds := Commands()
	i := slices.IndexFunc(cmds, func(c *Command) bool { return c.Path == path })
	if i < 0 {
		return nil, false
	}
	return cmds[i], true
}

var (
	accountArg = Arg{Name: "jid", Label: "Account (user@domain)", Kind: Account, Required: true, Positional: true}
	contactArg = Arg{Name: "contact", Label: "Contact (a bare JID)", Kind: JID, Required: true, Positional: true}
	roomArg    = Arg{Name: "room", Label: "Room (room@conference.DOMAIN)", Kind: Room, Required: true, Positional: true}
)

// roomRestart is what the help of the commands that change an existing
// room says: the CLI cannot reach the running server.
const roomRestart = "A running server that has loaded the room (at start, or when someone used it since) keeps what it had until it restarts: restart it to apply the change."

// passwordCommand is an account command that takes a new password (add,
// passwd): set applies it and done says, before the account's JID, what was
// done.
func passwordCommand(path, short string, set func(u Users, ctx context.Context, account, password string) (jid.JID, error), done string) *Command {
	return &Command{
		Path: path, Short: short, NeedsConfig: true,
		Args: []Arg{accountArg, {Name: "password", Label: "Password", Kind: String, Required: true, Secret: true}},
		Run: func(ctx context.Context, env *Env, in Input) (res Result, err error) {
			err = env.withRosters(ctx, func(r Rosters) error {
				j, err := set(r.Users, ctx, in.String("jid"), in.String("password"))
				if err != nil {
					return err
				}
				res = textf(j, "%s %s", done, j)
				return nil
			})
			return res, err
		},
	}
}

// listUsers is user list; its Value is the []jid.JID.
func listUsers(ctx context.Context, env *Env, in Input) (res Result, err error) {
	err = env.withRosters(ctx, func(r Rosters) error {
		list, err := r.Users.List(ctx, in.String("domain"))
		if err != nil {
			return err
		}
		res = linesOf(list, jid.JID.String)
		return nil
	})
	return res, err
}

// listRoster is roster list; its Value is the []storage.RosterItem.
func listRoster(ctx context.Context, env *Env, in Input) (res Result, err error) {
	err = env.withRosters(ctx, func(r Rosters) error {
		items, err := r.List(ctx, in.String("jid"))
		if err != nil {
			return err
		}
		res = linesOf(items, rosterLine)
		return nil
	})
	return res, err
}

// rosterLine shows a roster item as a client would see it, tab-separated.
func rosterLine(it storage.RosterItem) string {
	sub, ask, approved := subscription.ClientView(it)
	line := fmt.Sprintf("%s\tsubscription=%s", it.Contact, sub)
	if ask != "" {
		line += " ask=" + ask
	}
	if approved {
		line += " approved"
	}
	if it.PendingIn {
		line += " pending-in"
	}
	if it.Name != "" {
		line += fmt.Sprintf("\tname=%q", it.Name)
	}
	if len(it.Groups) > 0 {
		line += fmt.Sprintf("\tgroups=%s", strings.Join(it.Groups, ","))
	}
	return line
}

// checkFrom checks that s2s check's --from is a served domain.
func checkFrom(env *Env, in Input) error {
	from := in.String("from")
	if from == "" {
		return nil
	}
	cfg, err := env.Config()
	if err != nil {
		return err
	}
	if _, ok := cfg.Host(from); !ok {
		return fmt.Errorf("domain %q is not served by this server (see hosts in the config)", from)
	}
	return nil
}

// checkFederation is s2s check: the probe is Env.CheckFederation's, the
// verdict ours. Its Value is the FederationReport; without a usable
// authentication the report is still returned, with an error.
func checkFederation(ctx context.Context, env *Env, in Input) (Result, error) {
	cfg, err := env.Config()
	if err != nil {
		return Result{}, err
	}
	if env.CheckFederation == nil {
		return Result{}, errors.New("s2s check: no federation to check with")
	}
	local := cfg.Hosts[0].Domain
	if from := in.String("from"); from != "" {
		local = from
	}
	remote := in.JID("domain").Domainpart()
	rep, err := env.CheckFederation(ctx, cfg, local, remote)
	if err != nil {
		return Result{}, err
	}
	res := Result{Value: rep, Text: rep.Text}
	if rep.Auth == "" {
		return res, errors.New("no usable authentication with " + remote)
	}
	return res, nil
}

// checkTurn is check turn.
func checkTurn(ctx context.Context, env *Env, in Input) (Result, error) {
	cfg, err := env.Config()
	if err != nil {
		return Result{}, err
	}
	if env.CheckTurn == nil {
		return Result{}, errors.New("check turn: no relay to check with")
	}
	from := in.String("from")
	if from != "" {
		j, err := jid.Parse(from)
		if err != nil || j.Localpart() == "" {
			return Result{}, fmt.Errorf("check turn: --from %q: want an account, user@domain", from)
		}
		from = j.Bare().String()
	}
	report, ok, err := env.CheckTurn(ctx, cfg, from)
	res := Result{Text: report}
	if err != nil {
		return res, err
	}
	if !ok {
		return res, errors.New("the relay did not work")
	}
	return res, nil
}

// checkConfig is config check: the file named, or --config.
func checkConfig(_ context.Context, env *Env, in Input) (Result, error) {
	path := in.String("file")
	if path == "" {
		path = env.ConfigPath
	}
	if path == "" {
		return Result{}, errors.New("no configuration file given")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return Result{}, err
	}
	if env.CheckModules != nil {
		// The modules' part (IDs, their options) is the registry's to
		// check: config does not know the modules. Its errors carry the
		// file and line.
		if err := env.CheckModules(cfg); err != nil {
			return Result{}, err
		}
	}
	res := textf(nil, "%s: ok", path)
	res.Warnings = cfg.Warnings
	return res, nil
}

// migrate is db migrate; its Value is the number of migrations applied.
func migrate(ctx context.Context, env *Env, _ Input) (Result, error) {
	cfg, err := env.Config()
	if err != nil {
		return Result{}, err
	}
	if env.Migrate == nil {
		return Result{}, errors.New("db migrate: no database to migrate")
	}
	n, err := env.Migrate(ctx, cfg.Storage)
	if err != nil {
		return Result{}, err
	}
	return textf(n, "applied %d migration(s)", n), nil
}
