package main

import (
	"os"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
)

// TestRoomCLI runs `xmppd room` as an operator would, on each backend:
// create, list, affiliation and destroy, with their output, and the
// one-line errors and exit code 1 of bad input.
func TestRoomCLI(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		cfg := writeConfig(t, b.Config(t))
		c := func(args ...string) []string { return append([]string{"-c", cfg}, args...) }
		const (
			lounge = "lounge@conference.localhost"
			team   = "team@conference.example.org"
		)
		steps := []struct {
			name             string
			args             []string
			wantOut, wantErr string
		}{
			{name: "list nothing", args: c("room", "list")},
			{name: "create", args: c("room", "create", "Lounge@Conference.localhost", "--name", "The Lounge"),
				wantOut: "created " + lounge + " (persistent, no owner yet)\n"},
			{name: "create members-only", args: c("room", "create", team, "--members-only", "--persistent"),
				wantOut: "created " + team + " (persistent, no owner yet)\n"},
			{name: "create again", args: c("room", "create", lounge), wantErr: "room " + lounge + " already exists"},
			{name: "create temporary", args: c("room", "create", "temp@conference.localhost", "--persistent=false"), wantErr: "persistent rooms only"},
			{name: "create on a user domain", args: c("room", "create", "x@localhost"),
				wantErr: `"localhost" is not a multi-user chat service of this server (services: conference.localhost, conference.example.org)`},
			{name: "create on an unknown service", args: c("room", "create", "x@conference.example.com"), wantErr: `"conference.example.com" is not a multi-user chat service`},
			{name: "create without a room name", args: c("room", "create", "conference.localhost"), wantErr: `invalid room "conference.localhost": want room@service`},
			{name: "create a bad JID", args: c("room", "create", "a@b@c"), wantErr: `invalid room "a@b@c"`},
			{name: "create without room", args: c("room", "create"), wantErr: "accepts 1 arg(s)"},
			{name: "list", args: c("room", "list"), wantOut: lounge + "\tpersistent\topen\taffiliations=0\tname=\"The Lounge\"\n" +
				team + "\tpersistent\tmembers-only\taffiliations=0\n"},
			{name: "list a service", args: c("room", "list", "conference.example.org"), wantOut: team + "\tpersistent\tmembers-only\taffiliations=0\n"},
			{name: "list an unknown service", args: c("room", "list", "conference.example.com"), wantErr: `"conference.example.com" is not a multi-user chat service`},
			{name: "list two services", args: c("room", "list", "conference.localhost", "conference.example.org"), wantErr: "accepts at most 1 arg(s)"},
			{name: "owner", args: c("room", "affiliation", lounge, "alice@localhost", "owner"), wantOut: "alice@localhost is now owner of " + lounge + "\n"},
			{name: "remote member", args: c("room", "affiliation", lounge, "zoe@example.com", "member"), wantOut: "zoe@example.com is now member of " + lounge + "\n"},
			{name: "ban a domain", args: c("room", "affiliation", lounge, "spam.example", "outcast"), wantOut: "spam.example is now outcast of " + lounge + "\n"},
			{name: "no such affiliation", args: c("room", "affiliation", lounge, "zoe@example.com", "moderator"),
				wantErr: `invalid affiliation "moderator": want one of owner, admin, member, outcast, none`},
			{name: "a full JID", args: c("room", "affiliation", lounge, "zoe@example.com/phone", "member"), wantErr: "bare JIDs"},
			{name: "a bad JID", args: c("room", "affiliation", lounge, "@@", "member"), wantErr: `invalid JID "@@"`},
			{name: "no such room", args: c("room", "affiliation", "gone@conference.localhost", "zoe@example.com", "member"),
				wantErr: "room gone@conference.localhost does not exist"},
			{name: "without affiliation", args: c("room", "affiliation", lounge, "zoe@example.com"), wantErr: "accepts 3 arg(s)"},
			{name: "remove the last owner", args: c("room", "affiliation", lounge, "alice@localhost", "none"),
				wantErr: "alice@localhost is the last owner of room " + lounge + ": make another owner first"},
			{name: "a second owner", args: c("room", "affiliation", lounge, "zoe@example.com", "owner"), wantOut: "zoe@example.com is now owner of " + lounge + "\n"},
			{name: "remove an owner", args: c("room", "affiliation", lounge, "alice@localhost", "none"),
				wantOut: "alice@localhost has no affiliation with " + lounge + " now\n"},
			{name: "list after affiliations", args: c("room", "list", "conference.localhost"),
				wantOut: lounge + "\tpersistent\topen\taffiliations=2\tname=\"The Lounge\"\n"},
			{name: "destroy", args: c("room", "destroy", lounge), wantOut: "destroyed " + lounge + ", its affiliations and its archive\n"},
			{name: "destroy again", args: c("room", "destroy", lounge), wantErr: "room " + lounge + " does not exist"},
			{name: "destroy on an unknown service", args: c("room", "destroy", "x@conference.example.com"), wantErr: `"conference.example.com" is not a multi-user chat service`},
			{name: "list after destroy", args: c("room", "list"), wantOut: team + "\tpersistent\tmembers-only\taffiliations=0\n"},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				xmppd(t, "", "", s.args...).check(t, s.wantOut, s.wantErr)
			})
		}
	})
}

// TestRoomCLIServices: the services are the configuration's: the muc
// prefix of module_options.muc, none when the module is off, and a bad
// muc block is the error of its line.
func TestRoomCLIServices(t *testing.T) {
	t.Parallel()
	st := storetest.Backend{Name: "sqlite"}.Config(t)
	write := func(extra string) string {
		path := writeConfig(t, st)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(extra); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chat := write("module_options:\n  muc:\n    prefix: chat\n")
	off := write("modules: [disco, roster]\n")
	bad := write("module_options:\n  muc:\n    prefx: chat\n")
	for _, tt := range []struct {
		name             string
		args             []string
		wantOut, wantErr string
	}{
		{name: "the prefix", args: []string{"-c", chat, "room", "create", "a@chat.localhost"}, wantOut: "created a@chat.localhost (persistent, no owner yet)\n"},
		{name: "not the default prefix", args: []string{"-c", chat, "room", "create", "a@conference.localhost"},
			wantErr: `"conference.localhost" is not a multi-user chat service of this server (services: chat.localhost, chat.example.org)`},
		{name: "listed by the prefix", args: []string{"-c", chat, "room", "list"}, wantOut: "a@chat.localhost\tpersistent\topen\taffiliations=0\n"},
		{name: "the module off", args: []string{"-c", off, "room", "list"}, wantErr: "the muc module is not enabled"},
		{name: "a bad muc block", args: []string{"-c", bad, "room", "list"}, wantErr: "prefx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xmppd(t, "", "", tt.args...).check(t, tt.wantOut, tt.wantErr)
		})
	}
}

// TestRoomHelp: the help of the room commands says what an operator must
// know beyond the one line: rooms made here are persistent and have no
// owner, and changes to a room the server has loaded need a restart.
func TestRoomHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cmd  string
		want []string
	}{
		{cmd: "create", want: []string{"persistent", "no owner", "room affiliation ROOM JID owner", "first stanza"}},
		{cmd: "destroy", want: []string{"until it restarts"}},
		{cmd: "affiliation", want: []string{"last owner", "until it restarts"}},
	} {
		r := xmppd(t, "", "", "room", tt.cmd, "--help")
		if r.code != 0 {
			t.Errorf("room %s --help: exit %d, %s", tt.cmd, r.code, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("room %s --help does not say %q:\n%s", tt.cmd, w, r.stdout)
			}
		}
	}
}
