package main

// The CLI is tested as operators use it: the binary is built once, run as a
// subprocess, and judged by its exit code, standard output and standard
// error.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage/credential"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// xmppdBin is the binary built by TestMain.
var xmppdBin string

// raceEnabled is set by race_test.go when the tests run with -race.
var raceEnabled bool

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "xmppd-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	xmppdBin = filepath.Join(dir, "xmppd")
	args := []string{"build", "-o", xmppdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	// go test puts its own go command first in PATH.
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build xmppd:", err)
		return 1
	}
	return m.Run()
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// xmppd runs the binary in dir (a new temporary directory if empty) with
// stdin as its standard input (/dev/null if empty).
func xmppd(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(xmppdBin, args...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("run xmppd %s: %v", strings.Join(args, " "), err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// check compares a result with what a command should do: exit 0 with
// wantOut on stdout and nothing on stderr, or (wantErr != "") exit 1 with
// one line on stderr, "xmppd: …" containing wantErr, and nothing on stdout.
func (r result) check(t *testing.T, wantOut, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if r.code != 0 || r.stdout != wantOut || r.stderr != "" {
			t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit 0, stdout %q, no stderr", r.code, r.stdout, r.stderr, wantOut)
		}
		return
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "xmppd: ") || !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line \"xmppd: …\"", r.stderr)
	}
	if !strings.Contains(r.stderr, wantErr) {
		t.Errorf("stderr %q does not contain %q", r.stderr, wantErr)
	}
}

// testConfig is a configuration serving localhost and example.org from a
// data directory next to the file, listening on free loopback ports. The
// storage line is appended by writeConfig.
const testConfig = `data_dir: ./data
hosts:
  - domain: localhost
  - domain: example.org
listeners:
  - type: c2s
    address: "127.0.0.1:0"
  - type: c2s_tls
    address: "127.0.0.1:0"
auth:
  scram_iterations: 4096
log:
  level: debug
`

// writeConfig writes testConfig with the given storage into a new
// directory and returns the file's path.
func writeConfig(t *testing.T, st config.Storage) string {
	t.Helper()
	text := testConfig
	switch {
	case st.Postgres != "":
		text += fmt.Sprintf("storage:\n  postgres: %q\n", st.Postgres)
	case st.SQLite != "":
		text += fmt.Sprintf("storage:\n  sqlite: %q\n", st.SQLite)
	}
	path := filepath.Join(t.TempDir(), "xmppd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyPassword reports whether password logs account in, checked as a
// PLAIN login is: against every stored SCRAM credential.
func verifyPassword(t *testing.T, st config.Storage, domain, local, password string) bool {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.Users().Get(ctx, domain, local)
	if err != nil {
		t.Fatalf("get %s@%s: %v", local, domain, err)
	}
	if len(u.Credentials) == 0 {
		t.Fatalf("%s@%s has no credentials", local, domain)
	}
	ok := true
	for _, c := range u.Credentials {
		ok = ok && credential.VerifyPlain(c, password)
	}
	return ok
}

func TestUser(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		st := b.Config(t)
		cfg := writeConfig(t, st)
		add := func(account string) []string { return []string{"-c", cfg, "user", "add", account, "--password-stdin"} }
		steps := []struct {
			name    string
			args    []string
			stdin   string
			wantOut string
			wantErr string
			check   func(t *testing.T) // after the command
		}{
			{name: "add", args: add("alice@localhost"), stdin: "pw-one\n", wantOut: "created alice@localhost\n"},
			{name: "add normalises the JID", args: add("Bob@LocalHost"), stdin: "pw-bob\n", wantOut: "created bob@localhost\n"},
			{name: "add on the second domain", args: add("carol@example.org"), stdin: "pw-carol", wantOut: "created carol@example.org\n"},
			{name: "--config after the command", args: []string{"user", "add", "zoe@localhost", "--password-stdin", "--config", cfg}, stdin: "pw-zoe\r\n", wantOut: "created zoe@localhost\n"},
			{
				name: "add again", args: add("alice@localhost"), stdin: "other\n",
				wantErr: "user alice@localhost already exists",
				check: func(t *testing.T) {
					if !verifyPassword(t, st, "localhost", "alice", "pw-one") || verifyPassword(t, st, "localhost", "alice", "other") {
						t.Error("adding an existing user changed its password")
					}
				},
			},
			{name: "add again, another spelling", args: add("ALICE@localhost"), stdin: "other\n", wantErr: "user alice@localhost already exists"},
			{name: "malformed JID", args: add("not a jid@@"), stdin: "pw\n", wantErr: `invalid JID "not a jid@@"`},
			{name: "no local part", args: add("@localhost"), stdin: "pw\n", wantErr: `invalid JID "@localhost"`},
			{name: "no domain", args: add("alice@"), stdin: "pw\n", wantErr: "invalid JID"},
			{name: "bare domain", args: add("localhost"), stdin: "pw\n", wantErr: "want user@domain"},
			{name: "full JID", args: add("alice@localhost/res"), stdin: "pw\n", wantErr: "want user@domain"},
			{name: "unknown domain", args: add("dave@example.com"), stdin: "pw\n", wantErr: `"example.com" is not served`},
			{name: "empty password", args: add("dave@localhost"), stdin: "\n", wantErr: "empty password"},
			{name: "no password at all", args: add("dave@localhost"), stdin: "", wantErr: "empty password"},
			{name: "not a terminal", args: []string{"-c", cfg, "user", "add", "dave@localhost"}, stdin: "pw\n", wantErr: "use --password-stdin"},
			{name: "not a terminal, no stdin", args: []string{"-c", cfg, "user", "add", "dave@localhost"}, wantErr: "use --password-stdin"},
			{name: "no JID", args: []string{"-c", cfg, "user", "add"}, wantErr: "accepts 1 arg(s)"},
			{
				name: "list all, by domain then user", args: []string{"-c", cfg, "user", "list"},
				wantOut: "carol@example.org\nalice@localhost\nbob@localhost\nzoe@localhost\n",
				check: func(t *testing.T) {
					if verifyPassword(t, st, "localhost", "zoe", "pw-zoe\r") || !verifyPassword(t, st, "localhost", "zoe", "pw-zoe") {
						t.Error("a CRLF line ending became part of the password")
					}
				},
			},
			{name: "list a domain", args: []string{"-c", cfg, "user", "list", "localhost"}, wantOut: "alice@localhost\nbob@localhost\nzoe@localhost\n"},
			{name: "list the other domain", args: []string{"-c", cfg, "user", "list", "example.org"}, wantOut: "carol@example.org\n"},
			{name: "list a domain in another case", args: []string{"-c", cfg, "user", "list", "Example.ORG"}, wantOut: "carol@example.org\n"},
			{name: "list an unserved domain", args: []string{"-c", cfg, "user", "list", "example.com"}, wantErr: `"example.com" is not served`},
			{
				name: "passwd", args: []string{"-c", cfg, "user", "passwd", "alice@localhost", "--password-stdin"}, stdin: "pw-two\n",
				wantOut: "changed the password of alice@localhost\n",
				check: func(t *testing.T) {
					if verifyPassword(t, st, "localhost", "alice", "pw-one") {
						t.Error("the old password still works")
					}
					if !verifyPassword(t, st, "localhost", "alice", "pw-two") {
						t.Error("the new password does not work")
					}
					if !verifyPassword(t, st, "localhost", "bob", "pw-bob") {
						t.Error("another user's password changed")
					}
				},
			},
			{name: "passwd of a missing user", args: []string{"-c", cfg, "user", "passwd", "dave@localhost", "--password-stdin"}, stdin: "pw\n", wantErr: "user dave@localhost does not exist"},
			{name: "passwd to empty", args: []string{"-c", cfg, "user", "passwd", "alice@localhost", "--password-stdin"}, stdin: "\n", wantErr: "empty password"},
			{name: "passwd, not a terminal", args: []string{"-c", cfg, "user", "passwd", "alice@localhost"}, stdin: "pw\n", wantErr: "use --password-stdin"},
			{name: "passwd of a malformed JID", args: []string{"-c", cfg, "user", "passwd", "@@", "--password-stdin"}, stdin: "pw\n", wantErr: "invalid JID"},
			{name: "del of a missing user", args: []string{"-c", cfg, "user", "del", "dave@localhost"}, wantErr: "user dave@localhost does not exist"},
			{name: "del on an unserved domain", args: []string{"-c", cfg, "user", "del", "bob@example.com"}, wantErr: "not served"},
			{name: "del", args: []string{"-c", cfg, "user", "del", "Bob@localhost"}, wantOut: "deleted bob@localhost\n"},
			{name: "del again", args: []string{"-c", cfg, "user", "del", "bob@localhost"}, wantErr: "user bob@localhost does not exist"},
			{name: "list after del", args: []string{"-c", cfg, "user", "list", "localhost"}, wantOut: "alice@localhost\nzoe@localhost\n"},
			{name: "add the deleted user again", args: add("bob@localhost"), stdin: "pw-bob2\n", wantOut: "created bob@localhost\n"},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				xmppd(t, "", s.stdin, s.args...).check(t, s.wantOut, s.wantErr)
				if s.check != nil {
					s.check(t)
				}
			})
		}
		if t.Failed() {
			return
		}
		if !verifyPassword(t, st, "localhost", "alice", "pw-two") || !verifyPassword(t, st, "localhost", "bob", "pw-bob2") {
			t.Error("the final passwords are not the last ones set")
		}
	})
}

func TestUserMissingConfig(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	xmppd(t, "", "pw\n", "-c", missing, "user", "add", "alice@localhost", "--password-stdin").
		check(t, "", "config file "+missing+" does not exist")
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	example := xmppd(t, "", "", "config", "example")
	example.check(t, example.stdout, "")
	if !strings.Contains(example.stdout, "hosts:") {
		t.Fatalf("config example printed %q", example.stdout)
	}
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	examplePath := write("example.yaml", example.stdout)
	unknownKey := write("unknown-key.yaml", "hosts:\n  - domain: localhost\n    certificate: x.pem\n")
	unknownModule := write("unknown-module.yaml", "hosts:\n  - domain: localhost\nmodules: [ping, no_such_module]\n")
	badValue := write("bad-value.yaml", "hosts:\n  - domain: localhost\nlog:\n  level: loud\n")
	oldKey := write("old-key.yaml", "hosts:\n  - domain: localhost\nlimits:\n  max_roster_items: 10\n")
	bothKeys := write("both-keys.yaml", "hosts:\n  - domain: localhost\nlimits:\n  max_roster_items: 10\nmodule_options:\n  roster: {max_items: 20}\n")
	optionKey := write("option-key.yaml", "hosts:\n  - domain: localhost\nmodule_options:\n  roster:\n    max_item: 20\n")
	optionValue := write("option-value.yaml", "hosts:\n  - domain: localhost\nmodule_options:\n  vcard:\n    max_size: -1\n")
	optionModule := write("option-module.yaml", "hosts:\n  - domain: localhost\nmodules: [ping]\nmodule_options:\n  roster: {max_items: 20}\n  rooster: {max_items: 20}\n")
	missing := filepath.Join(dir, "missing.yaml")

	tests := []struct {
		name    string
		args    []string
		wantOut string
		// wantErr are substrings of stderr; the error may span lines when
		// a file has several problems.
		wantErr []string
		// wantWarn is a substring of stderr for a file that checks.
		wantWarn string
	}{
		{name: "the example checks", args: []string{"config", "check", examplePath}, wantOut: examplePath + ": ok\n"},
		{name: "--config names the file", args: []string{"-c", examplePath, "config", "check"}, wantOut: examplePath + ": ok\n"},
		{name: "the argument wins over --config", args: []string{"-c", missing, "config", "check", examplePath}, wantOut: examplePath + ": ok\n"},
		{name: "unknown key", args: []string{"config", "check", unknownKey}, wantErr: []string{unknownKey + ":3:", `"certificate"`}},
		{name: "unknown module", args: []string{"config", "check", unknownModule}, wantErr: []string{unknownModule, `unknown module "no_such_module"`}},
		{name: "invalid value", args: []string{"config", "check", badValue}, wantErr: []string{badValue + ":4:", "log.level", "loud"}},
		{name: "deprecated key", args: []string{"config", "check", oldKey}, wantOut: oldKey + ": ok\n",
			wantWarn: "warning: " + oldKey + ":4: limits.max_roster_items is deprecated: write module_options.roster.max_items instead\n"},
		{name: "old and new key", args: []string{"config", "check", bothKeys}, wantErr: []string{bothKeys + ":4:", "limits.max_roster_items and module_options.roster.max_items (line 6)"}},
		{name: "unknown module option", args: []string{"config", "check", optionKey}, wantErr: []string{optionKey + ":5:", `unknown key "max_item" in module_options.roster`}},
		{name: "invalid module option", args: []string{"config", "check", optionValue}, wantErr: []string{optionValue + ":4:", "module_options.vcard: max_size: must be positive, not -1"}},
		{name: "options of a module not enabled or unknown", args: []string{"config", "check", optionModule}, wantErr: []string{
			optionModule + `:5: module_options.roster: options for module "roster", which is not enabled`,
			optionModule + `:6: module_options.rooster: options for unknown module "rooster"`}},
		{name: "missing file", args: []string{"config", "check", missing}, wantErr: []string{"config file " + missing + " does not exist"}},
		{name: "no file", args: []string{"config", "check"}, wantErr: []string{"no configuration file given"}},
		{name: "two files", args: []string{"config", "check", examplePath, examplePath}, wantErr: []string{"accepts at most 1 arg(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := xmppd(t, "", "", tt.args...)
			if tt.wantWarn != "" {
				if r.code != 0 || r.stdout != tt.wantOut || !strings.Contains(r.stderr, tt.wantWarn) {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 0, %q and the warning %q", r.code, r.stdout, r.stderr, tt.wantOut, tt.wantWarn)
				}
				return
			}
			if tt.wantErr == nil {
				r.check(t, tt.wantOut, "")
				return
			}
			if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "xmppd: ") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and an error", r.code, r.stdout, r.stderr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q does not contain %q", r.stderr, s)
				}
			}
		})
	}
}

// TestConfigExamplePipe runs "xmppd config example | xmppd config check
// /dev/stdin" through a shell, as an operator would.
func TestConfigExamplePipe(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	q := strconv.Quote(xmppdBin)
	cmd := exec.Command(sh, "-c", "set -e; "+q+" config example | "+q+" config check /dev/stdin")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "/dev/stdin: ok\n" {
		t.Errorf("pipe: %v, output %q", err, out)
	}
}

var appliedRE = regexp.MustCompile(`^applied (\d+) migration\(s\)\n$`)

func TestDBMigrate(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		st := b.Config(t)
		if b.Name == "sqlite" {
			// A path relative to the configuration file, which must not
			// depend on the directory xmppd runs in.
			st.SQLite = "./data/xmppd.db"
		}
		cfg := writeConfig(t, st)
		cwd := t.TempDir()

		first := xmppd(t, cwd, "", "-c", cfg, "db", "migrate")
		first.check(t, first.stdout, "")
		m := appliedRE.FindStringSubmatch(first.stdout)
		if m == nil {
			t.Fatalf("first migrate printed %q", first.stdout)
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 {
			t.Errorf("a fresh database got %d migrations", n)
		}
		xmppd(t, cwd, "", "-c", cfg, "db", "migrate").check(t, "applied 0 migration(s)\n", "")

		if b.Name == "sqlite" {
			if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "data", "xmppd.db")); err != nil {
				t.Errorf("the database is not next to the config file: %v", err)
			}
			if entries, _ := os.ReadDir(cwd); len(entries) > 0 {
				t.Errorf("xmppd wrote into its working directory: %v", entries)
			}
		}
		// The migrated database is usable.
		xmppd(t, cwd, "pw\n", "-c", cfg, "user", "add", "alice@localhost", "--password-stdin").check(t, "created alice@localhost\n", "")
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := xmppd(t, "", "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "xmppd ") || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"no-such-command"}, `unknown command "no-such-command"`},
		{[]string{"version", "extra"}, `unknown command "extra"`},
		{[]string{"--no-such-flag", "version"}, "unknown flag: --no-such-flag"},
		{[]string{"db", "migrate", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			xmppd(t, "", "", tt.args...).check(t, "", tt.wantErr)
		})
	}
}
