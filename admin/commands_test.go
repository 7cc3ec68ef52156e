package admin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// goodValue is a value of each kind that Parse accepts under the
// development default configuration (domain localhost).
var goodValue = map[admin.Kind]string{
	admin.String:  "text",
	admin.Account: "alice@localhost",
	admin.JID:     "bob@localhost",
	admin.Domain:  "localhost",
	admin.Int:     "3",
	admin.Bool:    "true",
	admin.File:    "xmppd.yaml",
	admin.Time:    "2024-05-01",
	admin.Room:    "lounge@conference.localhost",
}

// goodByName are good values of arguments that a command checks further
// than their kind: s2s check's --from must be served, room affiliation's
// affiliation must be one of XEP-0045's.
var goodByName = map[string]string{"from": "localhost", "affiliation": "member"}

// validInput gives every argument of c a good value, secrets excepted.
func validInput(c *admin.Command) map[string][]string {
	raw := map[string][]string{}
	for _, a := range c.Args {
		v, ok := goodByName[a.Name]
		if !ok {
			v = goodValue[a.Kind]
		}
		if !a.Secret {
			raw[a.Name] = []string{v}
		}
	}
	return raw
}

// TestRegistry checks what every front end relies on: each command is in a
// group, has help and a Run, and its arguments are described well enough to
// build a usage line and a data form.
func TestRegistry(t *testing.T) {
	groups := map[string]bool{}
	for _, g := range admin.Groups() {
		if g.Short == "" {
			t.Errorf("group %s has no help", g.Name)
		}
		groups[g.Name] = true
	}
	seen := map[string]bool{}
	for _, c := range admin.Commands() {
		t.Run(c.Path, func(t *testing.T) {
			if seen[c.Path] {
				t.Error("defined twice")
			}
			seen[c.Path] = true
			if !groups[c.Group()] {
				t.Errorf("group %q is not in Groups", c.Group())
			}
			if c.Short == "" || c.Run == nil {
				t.Errorf("Short %q, Run set %v: want both", c.Short, c.Run != nil)
			}
			if got, ok := admin.Lookup(c.Path); !ok || got.Path != c.Path {
				t.Errorf("Lookup(%q) = %v, %v", c.Path, got, ok)
			}
			names := map[string]bool{}
			optional := false
			for _, a := range c.Args {
				if a.Name == "" || a.Label == "" || names[a.Name] {
					t.Errorf("argument %+v: want a unique name and a label", a)
				}
				names[a.Name] = true
				if a.Secret && a.Positional {
					t.Errorf("secret %s is positional: it would be on the command line", a.Name)
				}
				if a.Positional && a.Required && optional {
					t.Errorf("required %s after an optional positional argument", a.Name)
				}
				optional = optional || a.Positional && !a.Required
			}
			if _, err := c.Parse(&admin.Env{}, validInput(c)); err != nil {
				t.Errorf("good arguments refused: %v", err)
			}
		})
	}
	if _, ok := admin.Lookup("user frobnicate"); ok {
		t.Error("Lookup found a command that does not exist")
	}
}

// TestParseNamesTheProblem: a missing required argument, or a JID or
// domain that does not parse, is refused with an error that names it.
func TestParseNamesTheProblem(t *testing.T) {
	const bad = "not a jid@@"
	type testCase struct {
		name     string
		cmd      *admin.Command
		raw      map[string][]string
		wantErr  string
		atExec   bool // a secret: refused by Exec, since the CLI asks after Parse
		wantLine bool
	}
	var tests []testCase
	for _, c := range admin.Commands() {
		for _, a := range c.Args {
			if a.Required {
				raw := validInput(c)
				delete(raw, a.Name)
				tests = append(tests, testCase{name: c.Path + " without " + a.Name, cmd: c, raw: raw, wantErr: a.Name, atExec: a.Secret})
			}
			if a.Kind == admin.Account || a.Kind == admin.JID || a.Kind == admin.Domain || a.Kind == admin.Room {
				raw := validInput(c)
				raw[a.Name] = []string{bad}
				tests = append(tests, testCase{name: c.Path + " with a bad " + a.Name, cmd: c, raw: raw, wantErr: `"` + bad + `"`})
			}
		}
	}
	user, _ := admin.Lookup("user add")
	roster, _ := admin.Lookup("roster add")
	tests = append(tests,
		testCase{name: "unserved domain", cmd: user, raw: map[string][]string{"jid": {"alice@example.com"}}, wantErr: `domain "example.com" is not served`},
		testCase{name: "full JID for an account", cmd: user, raw: map[string][]string{"jid": {"alice@localhost/r"}}, wantErr: "want user@domain"},
		testCase{name: "full JID for a contact", cmd: roster, raw: map[string][]string{"jid": {"alice@localhost"}, "contact": {"bob@localhost/r"}}, wantErr: "bare JIDs"},
		testCase{name: "unknown argument", cmd: user, raw: map[string][]string{"jid": {"alice@localhost"}, "colour": {"red"}}, wantErr: `"colour"`},
		testCase{name: "a single value twice", cmd: user, raw: map[string][]string{"jid": {"alice@localhost", "bob@localhost"}}, wantErr: "jid given 2 times"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &admin.Env{OpenStore: func(context.Context, config.Storage) (storage.Store, error) {
				t.Fatal("the store was opened for bad arguments")
				return nil, nil
			}}
			in, err := tt.cmd.Parse(env, tt.raw)
			if tt.atExec {
				if err != nil {
					t.Fatalf("Parse refused what the CLI asks for later: %v", err)
				}
				_, err = tt.cmd.Exec(context.Background(), env, in)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	add, _ := admin.Lookup("roster add")
	in, err := add.Parse(&admin.Env{}, map[string][]string{
		"jid": {"Alice@LocalHost"}, "contact": {"Bob@Example.COM"}, "group": {"b", "a"}, "name": {""},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := in.String("jid"); got != "Alice@LocalHost" {
		t.Errorf("String(jid) = %q, want it as given", got)
	}
	if got := in.JID("jid"); !got.Equal(jid.MustParse("alice@localhost")) {
		t.Errorf("JID(jid) = %s, want it normalised", got)
	}
	if got := in.JID("contact"); got.String() != "bob@example.com" {
		t.Errorf("JID(contact) = %s", got)
	}
	if got := in.Strings("group"); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Strings(group) = %q", got)
	}
	if got := in.String("name"); got != "" {
		t.Errorf("String(name) = %q, want empty", got)
	}
	if err := in.SetSecret("jid", "x"); err == nil {
		t.Error("SetSecret set an argument that is not secret")
	}
}

func TestFieldType(t *testing.T) {
	tests := []struct {
		arg  admin.Arg
		want string
	}{
		{admin.Arg{Kind: admin.String, Secret: true}, "text-private"},
		{admin.Arg{Kind: admin.Account}, "jid-single"},
		{admin.Arg{Kind: admin.JID, Repeated: true}, "jid-multi"},
		{admin.Arg{Kind: admin.String, Repeated: true}, "text-multi"},
		{admin.Arg{Kind: admin.Bool}, "boolean"},
		{admin.Arg{Kind: admin.Domain}, "text-single"},
		{admin.Arg{Kind: admin.Int}, "text-single"},
		{admin.Arg{Kind: admin.File}, "text-single"},
		{admin.Arg{Kind: admin.Time}, "text-single"},
		{admin.Arg{Kind: admin.Room}, "jid-single"},
	}
	for _, tt := range tests {
		if got := tt.arg.FieldType(); got != tt.want {
			t.Errorf("FieldType(%+v) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}

// keepOpen is a store whose Close does nothing, so that one test store
// serves several commands (each closes what it opened).
type keepOpen struct{ storage.Store }

func (keepOpen) Close() error { return nil }

// TestCommandsRun runs the registry's operations one after the other
// against a store, as a front end would: Parse, the secret, Exec.
func TestCommandsRun(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		migrations := 0
		env := &admin.Env{
			OpenStore:    func(context.Context, config.Storage) (storage.Store, error) { return keepOpen{db}, nil },
			Migrate:      func(context.Context, config.Storage) (int, error) { migrations++; return 0, nil },
			CheckModules: func(*config.Config) error { return nil },
		}
		steps := []struct {
			path     string
			raw      map[string][]string
			password string
			wantText string
			wantErr  string
		}{
			{path: "user add", raw: map[string][]string{"jid": {"Alice@localhost"}}, password: "pw", wantText: "created alice@localhost\n"},
			{path: "user add", raw: map[string][]string{"jid": {"bob@localhost"}}, password: "pw", wantText: "created bob@localhost\n"},
			{path: "user add", raw: map[string][]string{"jid": {"bob@localhost"}}, password: "pw", wantErr: "user bob@localhost already exists"},
			{path: "user passwd", raw: map[string][]string{"jid": {"bob@localhost"}}, password: "pw2", wantText: "changed the password of bob@localhost\n"},
			{path: "user list", wantText: "alice@localhost\nbob@localhost\n"},
			{path: "user list", raw: map[string][]string{"domain": {"example.org"}}, wantErr: `"example.org" is not served`},
			{
				path: "roster add", raw: map[string][]string{"jid": {"alice@localhost"}, "contact": {"bob@localhost"}, "group": {"Team"}},
				wantText: "alice@localhost and bob@localhost are now subscribed to each other\n",
			},
			{path: "roster list", raw: map[string][]string{"jid": {"alice@localhost"}}, wantText: "bob@localhost\tsubscription=both\tgroups=Team\n"},
			{path: "roster del", raw: map[string][]string{"jid": {"alice@localhost"}, "contact": {"bob@localhost"}}, wantText: "removed bob@localhost from the roster of alice@localhost\n"},
			{path: "user del", raw: map[string][]string{"jid": {"bob@localhost"}}, wantText: "deleted bob@localhost\n"},
			{path: "user del", raw: map[string][]string{"jid": {"bob@localhost"}}, wantErr: "user bob@localhost does not exist"},
			{path: "db migrate", wantText: "applied 0 migration(s)\n"},
			{path: "config check", wantErr: "no configuration file given"},
		}
		for _, s := range steps {
			c, ok := admin.Lookup(s.path)
			if !ok {
				t.Fatalf("no command %q", s.path)
			}
			in, err := c.Parse(env, s.raw)
			if err == nil && s.password != "" {
				err = in.SetSecret("password", s.password)
			}
			var res admin.Result
			if err == nil {
				res, err = c.Exec(context.Background(), env, in)
			}
			switch {
			case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
				t.Errorf("%s %v: error %v, want %q", s.path, s.raw, err, s.wantErr)
			case s.wantErr == "" && err != nil:
				t.Errorf("%s %v: %v", s.path, s.raw, err)
			case res.Text != s.wantText:
				t.Errorf("%s %v: text %q, want %q", s.path, s.raw, res.Text, s.wantText)
			}
		}
		if migrations != 1 {
			t.Errorf("db migrate migrated %d times", migrations)
		}
		list, _ := admin.Lookup("user list")
		in, _ := list.Parse(env, nil)
		res, err := list.Exec(context.Background(), env, in)
		if got, ok := res.Value.([]jid.JID); err != nil || !ok || len(got) != 1 || got[0].String() != "alice@localhost" {
			t.Errorf("user list value %#v, %v; want [alice@localhost]", res.Value, err)
		}
	})
}

// TestS2SCheck: the verdict is the registry's, the probe is injected. A
// report without a usable authentication is returned together with the
// error, so that the operator sees why.
func TestS2SCheck(t *testing.T) {
	probeErr := errors.New("check b.test: connection refused")
	tests := []struct {
		name     string
		raw      map[string][]string
		auth     string
		probeErr error
		wantFrom string
		wantErr  string
	}{
		{name: "usable", raw: map[string][]string{"domain": {"B.test"}}, auth: "dialback", wantFrom: "localhost"},
		{name: "no authentication", raw: map[string][]string{"domain": {"b.test"}}, wantFrom: "localhost", wantErr: "no usable authentication with b.test"},
		{name: "probe fails", raw: map[string][]string{"domain": {"b.test"}}, probeErr: probeErr, wantFrom: "localhost", wantErr: "connection refused"},
		{name: "unserved --from", raw: map[string][]string{"domain": {"b.test"}, "from": {"example.com"}}, wantErr: `domain "example.com" is not served`},
		{name: "served --from", raw: map[string][]string{"domain": {"b.test"}, "from": {"localhost"}}, auth: "sasl-external", wantFrom: "localhost"},
	}
	check, _ := admin.Lookup("s2s check")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var from, remote string
			env := &admin.Env{CheckFederation: func(_ context.Context, _ *config.Config, local, r string) (admin.FederationReport, error) {
				from, remote = local, r
				return admin.FederationReport{Auth: tt.auth, Text: "report\n"}, tt.probeErr
			}}
			in, err := check.Parse(env, tt.raw)
			var res admin.Result
			if err == nil {
				res, err = check.Exec(context.Background(), env, in)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if from != tt.wantFrom || tt.wantFrom != "" && remote != "b.test" {
				t.Errorf("probed %q from %q, want b.test from %q", remote, from, tt.wantFrom)
			}
			if wantText := tt.wantFrom != "" && tt.probeErr == nil; (res.Text == "report\n") != wantText {
				t.Errorf("text %q, report shown: want %v", res.Text, wantText)
			}
		})
	}
}
