package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// loadString writes text to dir/name and loads it by that relative name
// from inside dir, so that error messages and paths are predictable.
func loadString(t *testing.T, name, text string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(name)
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		file  string // the path it is loaded from, default xmppd.yaml
		text  string
		check func(t *testing.T, c *Config)
	}{{
		name: "minimal file gets every default",
		text: "hosts:\n  - domain: example.org\n",
		check: func(t *testing.T, c *Config) {
			want := Default()
			want.Hosts = []Host{{Domain: "example.org"}}
			want.DataDir = "xmppd-data"
			c.src = nil // where it was read from
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		},
	}, {
		name: "every setting given",
		text: `data_dir: /var/lib/xmppd
hosts:
  - domain: example.org
    cert: /etc/xmppd/example.org.crt
    key: /etc/xmppd/example.org.key
  - {domain: bücher.example}
listeners:
  - {type: c2s_tls, address: "127.0.0.1:0"}
storage:
  postgres: postgres://xmppd@db/xmppd
modules: [ping, muc, register, roster]
module_options:
  register: {allow_registration: true, per_ip: 1}
  roster:
    max_items: 50
auth:
  scram_iterations: 10000
  allow_plain: false
limits:
  max_stanza_size: 65536
  max_depth: 32
  max_sessions_per_user: 3
  outbound_queue: 100
  login_failures: 3
  login_failures_per_ip: 20
  login_window: 30s
  ping_interval: 2h
  ping_timeout: 90s
  max_pending_per_ip: 4
  resume_timeout: 90s
  sm_ack_after: 10
  sm_ack_interval: 1m
  sm_max_unacked: 200
  sm_max_unacked_bytes: 100000
  max_hibernating_per_user: 2
  max_hibernating: 300
  csi_max_held: 50
s2s:
  enabled: false
  routes: {example.net: "127.0.0.2:5269"}
  dns_server: "127.0.0.53:53"
  ca_file: /etc/xmppd/ca.pem
  auth: require_cert
  domain_auth: {legacy.example: allow_dialback}
  dialback_secret: s3cret
  plaintext_domains: [test.example]
  connect_timeout: 5s
  idle_timeout: 1m
archive:
  default: roster
  allowed: [roster, never]
  expire_after: 2y
  expire_batch: 50
  expire_every: 10m
log: {level: debug, format: json}
web:
  public_url: https://chat.example.org
  trusted_proxies: [127.0.0.1, 10.0.0.0/8]
  max_body_size: 4096
  max_header_bytes: 2048
  read_header_timeout: 2s
  read_timeout: 20s
  write_timeout: 30s
  idle_timeout: 40s
  access_log: true
  websocket: {disabled: true, origins: ["*.example.org"], allow_insecure: true}
  metrics: {enabled: true, allow: [10.1.2.3, "fd00::/8"]}
`,
		check: func(t *testing.T, c *Config) {
			want := &Config{
				DataDir: "/var/lib/xmppd",
				Hosts: []Host{
					{Domain: "example.org", Cert: "/etc/xmppd/example.org.crt", Key: "/etc/xmppd/example.org.key"},
					{Domain: "bücher.example"},
				},
				Listeners: []Listener{{Type: ListenerC2SDirectTLS, Address: "127.0.0.1:0"}},
				Storage:   Storage{Postgres: "postgres://xmppd@db/xmppd"},
				Modules:   []string{"ping", "muc", "register", "roster"},
				Auth:      Auth{ScramIterations: 10000, AllowPlain: false, FastTokenTTL: 21 * 24 * time.Hour},
				Limits: Limits{
					MaxStanzaSize: 65536, MaxDepth: 32, MaxSessionsPerUser: 3,
					OutboundQueue: 100, LoginFailures: 3, LoginFailuresPerIP: 20, LoginWindow: 30 * time.Second,
					PingInterval: 2 * time.Hour, PingTimeout: 90 * time.Second,
					MaxPendingPerIP: 4,
					ResumeTimeout:   90 * time.Second, SMAckAfter: 10, SMAckInterval: time.Minute, SMMaxUnacked: 200, SMMaxUnackedBytes: 100000,
					MaxHibernatingPerUser: 2, MaxHibernating: 300, CSIMaxHeld: 50,
				},
				S2S: S2S{
					Routes: map[string]string{"example.net": "127.0.0.2:5269"}, DNSServer: "127.0.0.53:53",
					CAFile: "/etc/xmppd/ca.pem", Auth: S2SAuthRequireCert,
					DomainAuth:     map[string]string{"legacy.example": S2SAuthAllowDialback},
					DialbackSecret: "s3cret", PlaintextDomains: []string{"test.example"},
					ConnectTimeout: 5 * time.Second, IdleTimeout: time.Minute,
				},
				Archive: Archive{Default: ArchiveRoster, Allowed: []string{ArchiveRoster, ArchiveNever},
					ExpireAfter: Period(2 * 365 * 24 * time.Hour), ExpireBatch: 50, ExpireEvery: 10 * time.Minute},
				Log: Log{Level: "debug", Format: "json"},
				Web: Web{PublicURL: "https://chat.example.org", TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8"},
					MaxBodySize: 4096, MaxHeaderBytes: 2048, ReadHeaderTimeout: 2 * time.Second,
					ReadTimeout: 20 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 40 * time.Second, AccessLog: true,
					WebSocket: WebSocket{Disabled: true, Origins: []string{"*.example.org"}, AllowInsecure: true},
					BOSH:      BOSH{Path: "/http-bind", MaxWait: time.Minute, MaxHold: 1, Inactivity: time.Minute},
					Metrics:   Metrics{Enabled: true, Allow: []string{"10.1.2.3", "fd00::/8"}}},
			}
			wantOptions(t, c, map[string]string{
				"register": "allow_registration: true\nper_ip: 1\n",
				"roster":   "max_items: 50\n",
			})
			c.ModuleOptions, c.src = nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		},
	}, {
		name: "relative paths are relative to the file",
		file: "etc/xmppd.yaml",
		text: `data_dir: data
hosts:
  - {domain: example.org, cert: tls/a.crt, key: /abs/a.key}
storage: {sqlite: db/x.db}
`,
		check: func(t *testing.T, c *Config) {
			wantPaths(t, c.DataDir, "etc/data")
			wantPaths(t, c.Storage.SQLite, "etc/db/x.db")
			wantPaths(t, c.Hosts[0].Cert, "etc/tls/a.crt")
			wantPaths(t, c.Hosts[0].Key, "/abs/a.key")
		},
	}, {
		name: "default paths are relative to the file too",
		file: "etc/xmppd.yaml",
		text: "hosts: [{domain: example.org}]\n",
		check: func(t *testing.T, c *Config) {
			wantPaths(t, c.DataDir, "etc/xmppd-data")
			wantPaths(t, c.Storage.SQLite, "etc/xmppd-data/xmppd.db")
		},
	}, {
		name: "sqlite memory and URIs are not paths",
		text: "hosts: [{domain: example.org}]\nstorage: {sqlite: \":memory:\"}\n",
		check: func(t *testing.T, c *Config) {
			wantPaths(t, c.Storage.SQLite, ":memory:")
		},
	}, {
		name: "empty lists are kept, null ones defaulted",
		text: "hosts: [{domain: example.org}]\nmodules: []\nlisteners:\nauth:\n  allow_plain:\n",
		check: func(t *testing.T, c *Config) {
			if c.Modules == nil || len(c.Modules) != 0 {
				t.Errorf("modules = %#v, want empty", c.Modules)
			}
			if len(c.Listeners) != len(Default().Listeners) {
				t.Errorf("listeners = %v, want the defaults", c.Listeners)
			}
			if !c.Auth.AllowPlain {
				t.Error("allow_plain with no value turned PLAIN off")
			}
		},
	}, {
		name: "yaml anchors and merges are understood",
		text: `hosts:
  - &h {domain: example.org, cert: a.crt, key: a.key}
  - <<: *h
    domain: example.net
`,
		check: func(t *testing.T, c *Config) {
			if got := c.Hosts[1]; got.Domain != "example.net" || got.Cert != "a.crt" {
				t.Errorf("hosts[1] = %+v", got)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.file
			if name == "" {
				name = "xmppd.yaml"
			}
			c, err := loadString(t, name, tt.text)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func wantPaths(t *testing.T, got, want string) {
	t.Helper()
	if got != filepath.FromSlash(want) {
		t.Errorf("path = %q, want %q", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		text string
		want []string // the lines of the error, in order
	}{{
		name: "unknown key at top level",
		text: "hosts: [{domain: example.org}]\n\nlistner: []\n",
		want: []string{`xmppd.yaml:3: unknown key "listner" at top level (known keys: archive, auth, data_dir, hosts, limits, listeners, log, module_options, modules, s2s, storage, web)`},
	}, {
		name: "bad web settings",
		text: "hosts: [{domain: example.org}]\nweb:\n  public_url: ftp://x\n  trusted_proxies: [10.0.0.0/8, proxy.example]\n  websocket: {origins: [\"https://a/b\"]}\n  read_timeout: -1s\n  metrics: {allow: [127.0.0.1, localhost]}\n",
		want: []string{
			`xmppd.yaml:3: web.public_url: "ftp://x" must be an absolute http:// or https:// URL`,
			`xmppd.yaml:4: web.trusted_proxies[1]: "proxy.example" is neither an IP address nor a CIDR block`,
			`xmppd.yaml:5: web.websocket.origins[0]: "https://a/b" must be a host pattern such as example.org, *.example.org or *`,
			`xmppd.yaml:6: web.read_timeout: must be positive, not -1s`,
			`xmppd.yaml:7: web.metrics.allow[1]: "localhost" is neither an IP address nor a CIDR block`,
		},
	}, {
		name: "unknown nested key",
		text: "hosts: [{domain: example.org}]\nlimits:\n  max_depth: 10\n  max_stanzas: 5\n",
		want: []string{`xmppd.yaml:4: unknown key "max_stanzas" in limits (known keys: csi_max_held, login_failures, login_failures_per_ip, login_window, max_depth, max_hibernating, max_hibernating_per_user, max_pending_per_ip, max_sessions_per_user, max_stanza_size, outbound_queue, ping_interval, ping_timeout, resume_timeout, sm_ack_after, sm_ack_interval, sm_max_unacked, sm_max_unacked_bytes)`},
	}, {
		name: "unknown key in a list item",
		text: "hosts:\n  - domain: example.org\n  - domain: example.net\n    certificate: x.pem\n",
		want: []string{`xmppd.yaml:4: unknown key "certificate" in hosts[1] (known keys: cert, domain, key)`},
	}, {
		name: "every unknown key is reported",
		text: "foo: 1\nhosts: [{domain: example.org}]\nlog: {colour: true}\n",
		want: []string{
			`xmppd.yaml:1: unknown key "foo" at top level (known keys: archive, auth, data_dir, hosts, limits, listeners, log, module_options, modules, s2s, storage, web)`,
			`xmppd.yaml:3: unknown key "colour" in log (known keys: format, level)`,
		},
	}, {
		name: "bad domain",
		text: "hosts:\n  - domain: example.org\n  - domain: exa mple\n",
		want: []string{`xmppd.yaml:3: hosts[1].domain: "exa mple" is not a valid domain: idna: disallowed rune U+0020`},
	}, {
		name: "domain not in normal form",
		text: "hosts:\n  - domain: Example.ORG\n",
		want: []string{`xmppd.yaml:2: hosts[0].domain: "Example.ORG" is not in normal form: write "example.org"`},
	}, {
		name: "duplicate domain",
		text: "hosts:\n  - domain: example.org\n  - domain: example.org\n",
		want: []string{`xmppd.yaml:3: hosts[1].domain: "example.org" is listed twice`},
	}, {
		name: "cert without key",
		text: "hosts:\n  - domain: example.org\n    cert: a.crt\n",
		want: []string{`xmppd.yaml:2: hosts[0]: set both cert and key, or neither (for a self-signed certificate)`},
	}, {
		name: "no hosts",
		text: "log: {level: info}\n",
		want: []string{`xmppd.yaml: hosts: at least one host is required`},
	}, {
		name: "empty file",
		text: "",
		want: []string{`xmppd.yaml: hosts: at least one host is required`},
	}, {
		name: "bad listener type",
		text: "hosts: [{domain: example.org}]\nlisteners:\n  - type: c2s\n    address: \":5222\"\n  - type: bosh\n    address: \":5269\"\n",
		want: []string{`xmppd.yaml:5: listeners[1].type: unknown listener type "bosh" (want c2s, c2s_tls, s2s, s2s_tls, http, https, turn or turns)`},
	}, {
		name: "bad listener address",
		text: "hosts: [{domain: example.org}]\nlisteners:\n  - type: c2s\n    address: 5222\n",
		want: []string{`xmppd.yaml:4: listeners[0].address: "5222" is not a host:port address: address 5222: missing port in address`},
	}, {
		name: "both storages set",
		text: "hosts: [{domain: example.org}]\n\nstorage:\n  sqlite: x.db\n  postgres: postgres://db/xmppd\n",
		want: []string{`xmppd.yaml:3: storage: set only one of sqlite and postgres`},
	}, {
		name: "duplicate and empty modules",
		text: "hosts: [{domain: example.org}]\nmodules:\n  - ping\n  - \"\"\n  - ping\n",
		want: []string{
			`xmppd.yaml:4: modules[1]: empty module ID`,
			`xmppd.yaml:5: modules[2]: "ping" is listed twice`,
		},
	}, {
		name: "scram iterations too low",
		text: "hosts: [{domain: example.org}]\nauth:\n  scram_iterations: 1000\n",
		want: []string{`xmppd.yaml:3: auth.scram_iterations: 1000 is out of range 4096 to 1000000 (RFC 7677 asks for at least 4096)`},
	}, {
		name: "negative limit and bad log",
		text: "hosts: [{domain: example.org}]\nlimits:\n  max_depth: -1\n  ping_timeout: -5s\nlog:\n  level: verbose\n  format: xml\n",
		want: []string{
			`xmppd.yaml:3: limits.max_depth: must be positive, not -1`,
			`xmppd.yaml:4: limits.ping_timeout: must be positive, not -5s`,
			`xmppd.yaml:6: log.level: unknown level "verbose" (want debug, info, warn or error)`,
			`xmppd.yaml:7: log.format: unknown format "xml" (want text or json)`,
		},
	}, {
		name: "bad archive period",
		text: "hosts: [{domain: example.org}]\narchive:\n  expire_after: 1 year\n",
		want: []string{`xmppd.yaml:3: archive.expire_after: "1 year" is not a period (write a whole number of days, weeks or years like "365d", "52w", "1y", or a duration like "12h")`},
	}, {
		name: "negative archive period",
		text: "hosts: [{domain: example.org}]\narchive: {expire_after: -30d}\n",
		want: []string{`xmppd.yaml:2: archive.expire_after: "-30d" is negative`},
	}, {
		name: "archive period as a mapping",
		text: "hosts: [{domain: example.org}]\narchive:\n  expire_after: {days: 3}\n",
		want: []string{`xmppd.yaml:3: archive.expire_after: a period must be a scalar like "365d"`},
	}, {
		name: "bad archive modes",
		text: "hosts: [{domain: example.org}]\narchive:\n  default: sometimes\n  allowed:\n    - never\n    - all\n    - never\n  expire_batch: -5\n  expire_every: -1h\n",
		want: []string{
			`xmppd.yaml:3: archive.default: unknown mode "sometimes" (want always, never, roster)`,
			`xmppd.yaml:6: archive.allowed[1]: unknown mode "all" (want always, never, roster)`,
			`xmppd.yaml:7: archive.allowed[2]: "never" is listed twice`,
			`xmppd.yaml:8: archive.expire_batch: must be positive, not -5`,
			`xmppd.yaml:9: archive.expire_every: must be positive, not -1h0m0s`,
		},
	}, {
		name: "archive default not allowed",
		text: "hosts: [{domain: example.org}]\narchive:\n  allowed: [never, roster]\n",
		want: []string{`xmppd.yaml:2: archive.default: "always" is not among archive.allowed (never, roster): add it there`},
	}, {
		name: "no archive modes allowed",
		text: "hosts: [{domain: example.org}]\narchive:\n  default: never\n  allowed: []\n",
		want: []string{`xmppd.yaml:4: archive.allowed: at least one mode is required (always, never, roster); it must include archive.default`},
	}, {
		name: "missing environment variable",
		text: "hosts: [{domain: example.org}]\nstorage:\n  postgres: postgres://xmppd:${XMPPD_TEST_UNSET}@db/xmppd\n",
		want: []string{`xmppd.yaml:3: environment variable XMPPD_TEST_UNSET is not set`},
	}, {
		name: "bad environment reference",
		text: "hosts: [{domain: \"${1X}\"}]\ndata_dir: \"${OPEN\"\n",
		want: []string{
			`xmppd.yaml:1: ${1X}: not a valid environment variable name`,
			`xmppd.yaml:2: unclosed ${ in "${OPEN"`,
		},
	}, {
		name: "duration as a bare number",
		text: "hosts: [{domain: example.org}]\nlimits:\n  login_window: 60\n",
		want: []string{"xmppd.yaml:3: cannot unmarshal !!int `60` into time.Duration" + ` (write a duration like "30s", "5m" or "1h")`},
	}, {
		name: "wrong type",
		text: "hosts: [{domain: example.org}]\nlimits:\n  max_depth: deep\n",
		want: []string{"xmppd.yaml:3: cannot unmarshal !!str `deep` into int"},
	}, {
		name: "section of the wrong kind",
		text: "hosts: example.org\n",
		want: []string{"xmppd.yaml:1: cannot unmarshal !!str `example...` into []config.Host"},
	}, {
		name: "syntax error",
		text: "hosts:\n  - domain: example.org\n bad: indent\n",
		want: []string{"xmppd.yaml:2: did not find expected key"},
	}, {
		name: "key given twice",
		text: "hosts: [{domain: example.org}]\nlog:\n  level: info\n  level: debug\n",
		want: []string{`xmppd.yaml:4: mapping key "level" already defined at line 3`},
	}, {
		name: "two documents",
		text: "hosts: [{domain: example.org}]\n---\nlog: {level: debug}\n",
		want: []string{"xmppd.yaml:2: a second YAML document; the file must hold one"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := loadString(t, "xmppd.yaml", tt.text)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	// `xmppd serve` tells "no file" from "bad file" this way.
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEnv(t *testing.T) {
	t.Setenv("XMPPD_TEST_DOMAIN", "example.org")
	t.Setenv("XMPPD_TEST_ITER", "8192")
	t.Setenv("XMPPD_TEST_PLAIN", "false")
	// A secret with YAML syntax in it must stay one string.
	t.Setenv("XMPPD_TEST_PASS", `p: a#ss" 'x`)
	t.Setenv("XMPPD_TEST_EMPTY", "")
	c, err := loadString(t, "xmppd.yaml", `# a comment may mention ${XMPPD_TEST_NOT_SET}
hosts:
  - domain: ${XMPPD_TEST_DOMAIN}
data_dir: "/srv/$${HOME}${XMPPD_TEST_EMPTY}/x$y"
storage:
  postgres: postgres://xmppd:${XMPPD_TEST_PASS}@db/xmppd
auth:
  scram_iterations: ${XMPPD_TEST_ITER}
  allow_plain: ${XMPPD_TEST_PLAIN}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hosts[0].Domain; got != "example.org" {
		t.Errorf("domain = %q", got)
	}
	if got := c.DataDir; got != "/srv/${HOME}/x$y" {
		t.Errorf("data_dir = %q", got)
	}
	if got, want := c.Storage.Postgres, `postgres://xmppd:p: a#ss" 'x@db/xmppd`; got != want {
		t.Errorf("postgres = %q, want %q", got, want)
	}
	if c.Auth.ScramIterations != 8192 || c.Auth.AllowPlain {
		t.Errorf("auth = %+v, want 8192 iterations and no PLAIN", c.Auth)
	}
}

func TestLoadEnvQuotedStaysString(t *testing.T) {
	// A quoted "${N}" is a string even when N is a number, as YAML says.
	t.Setenv("XMPPD_TEST_ITER", "8192")
	_, err := loadString(t, "xmppd.yaml", "hosts: [{domain: example.org}]\nauth: {scram_iterations: \"${XMPPD_TEST_ITER}\"}\n")
	if err == nil || !strings.Contains(err.Error(), "xmppd.yaml:2: cannot unmarshal !!str `8192` into int") {
		t.Fatalf("err = %v", err)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("XMPPD_TEST_A", "alpha")
	t.Setenv("XMPPD_TEST_EMPTY", "")
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${XMPPD_TEST_A}", want: "alpha"},
		{in: "x${XMPPD_TEST_A}y${XMPPD_TEST_A}z", want: "xalphayalphaz"},
		{in: "[${XMPPD_TEST_EMPTY}]", want: "[]"},
		{in: "$${XMPPD_TEST_A}", want: "${XMPPD_TEST_A}"},
		{in: "a$${b}${XMPPD_TEST_A}", want: "a${b}alpha"},
		{in: "pa$$word $x {y}", want: "pa$$word $x {y}"},
		{in: "${XMPPD_TEST_UNSET}", err: "environment variable XMPPD_TEST_UNSET is not set"},
		{in: "${}", err: "${}: not a valid environment variable name"},
		{in: "${A-B}", err: "${A-B}: not a valid environment variable name"},
		{in: "x${XMPPD_TEST_A", err: `unclosed ${ in "${XMPPD_TEST_A"`},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("expandEnv(%q) error = %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
