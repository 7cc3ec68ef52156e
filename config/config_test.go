package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		DataDir: "./xmppd-data",
		Hosts:   []Host{{Domain: "localhost"}},
		Listeners: []Listener{
			{Type: ListenerC2SStartTLS, Address: ":5222"},
			{Type: ListenerC2SDirectTLS, Address: ":5223"},
			{Type: ListenerHTTP, Address: "127.0.0.1:5280"},
			{Type: ListenerHTTPS, Address: "127.0.0.1:5281"},
			{Type: ListenerTURN, Address: "127.0.0.1:3478"},
		},
		Storage: Storage{SQLite: filepath.Join("xmppd-data", "xmppd.db")},
		Modules: []string{"disco", "ping", "version", "time", "roster", "offline", "blocking", "carbons", "vcard", "private", "last", "register", "push", "mam", "pep", "pubsub", "muc", "upload", "turn"},
		Auth:    Auth{ScramIterations: 4096, AllowPlain: true, FastTokenTTL: 21 * 24 * time.Hour},
		Limits: Limits{
			MaxStanzaSize: 262144, MaxDepth: 64, MaxSessionsPerUser: 10,
			OutboundQueue: 1024, LoginFailures: 5, LoginFailuresPerIP: 50, LoginWindow: time.Minute,
			PingInterval: 5 * time.Minute, PingTimeout: time.Minute,
			MaxPendingPerIP: 32,
			ResumeTimeout:   5 * time.Minute, SMAckAfter: 5, SMAckInterval: 30 * time.Second, SMMaxUnacked: 500, SMMaxUnackedBytes: 2 << 20,
			MaxHibernatingPerUser: 5, MaxHibernating: 10000, CSIMaxHeld: 256,
		},
		S2S: S2S{Enabled: true, Auth: S2SAuthAllowDialback,
			ConnectTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute},
		Archive: Archive{Default: "always", Allowed: []string{"always", "never", "roster"},
			ExpireBatch: 1000, ExpireEvery: time.Hour},
		Log: Log{Level: "info", Format: "text"},
		Web: Web{MaxBodySize: 1 << 20, MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
			BOSH: BOSH{Path: "/http-bind", MaxWait: time.Minute, MaxHold: 1, Inactivity: time.Minute}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default() is invalid: %v", err)
	}
	// Each call is a fresh config: changing one must not change the next.
	c.Modules[0] = "changed"
	if Default().Modules[0] != "disco" {
		t.Error("Default() configs share their module list")
	}
	c.Archive.Allowed[0] = "changed"
	if Default().Archive.Allowed[0] != "always" || ArchiveModes[0] != "always" {
		t.Error("Default() configs share their archive modes")
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Run("zero config", func(t *testing.T) {
		var c Config
		c.ApplyDefaults()
		want := Default()
		want.Hosts = nil             // a file must name its domains
		want.Auth.AllowPlain = false // false is a choice, not unset
		want.S2S.Enabled = false     // likewise
		if !reflect.DeepEqual(&c, want) {
			t.Errorf("got\n%+v\nwant\n%+v", &c, want)
		}
	})
	t.Run("set values are kept", func(t *testing.T) {
		c := Config{
			DataDir:   "/data",
			Listeners: []Listener{},
			Storage:   Storage{Postgres: "postgres://db"},
			Modules:   []string{},
			Limits:    Limits{MaxDepth: 7, PingTimeout: time.Second},
			Log:       Log{Format: "json"},
		}
		c.ApplyDefaults()
		if c.DataDir != "/data" || len(c.Listeners) != 0 || len(c.Modules) != 0 ||
			c.Storage != (Storage{Postgres: "postgres://db"}) ||
			c.Limits.MaxDepth != 7 || c.Limits.PingTimeout != time.Second ||
			c.Log != (Log{Level: "info", Format: "json"}) {
			t.Errorf("ApplyDefaults changed a set value: %+v", c)
		}
		if c.Limits.MaxStanzaSize != 262144 {
			t.Errorf("MaxStanzaSize = %d, want the default", c.Limits.MaxStanzaSize)
		}
	})
	t.Run("sqlite goes into the data dir", func(t *testing.T) {
		c := Config{DataDir: "/data"}
		c.ApplyDefaults()
		if want := filepath.Join("/data", "xmppd.db"); c.Storage.SQLite != want {
			t.Errorf("SQLite = %q, want %q", c.Storage.SQLite, want)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // "" for valid
	}{
		{"default", func(c *Config) {}, ""},
		{"ip domain", func(c *Config) { c.Hosts[0].Domain = "192.0.2.1" }, ""},
		{"no hosts", func(c *Config) { c.Hosts = nil }, "config: hosts: at least one host is required"},
		{"empty domain", func(c *Config) { c.Hosts[0].Domain = "" }, "config: hosts[0].domain: a domain is required"},
		{"domain with user", func(c *Config) { c.Hosts[0].Domain = "me@example.org" },
			`config: hosts[0].domain: "me@example.org" is not a valid domain: it must have no user@ or /resource`},
		{"trailing dot", func(c *Config) { c.Hosts[0].Domain = "example.org." },
			`config: hosts[0].domain: "example.org." is not in normal form: write "example.org"`},
		{"a-label", func(c *Config) { c.Hosts[0].Domain = "xn--bcher-kva.example" },
			`config: hosts[0].domain: "xn--bcher-kva.example" is not in normal form: write "bücher.example"`},
		{"key without cert", func(c *Config) { c.Hosts[0].Key = "k.pem" },
			"config: hosts[0]: set both cert and key, or neither (for a self-signed certificate)"},
		{"no listeners", func(c *Config) { c.Listeners = nil }, "config: listeners: at least one listener is required"},
		{"port out of range", func(c *Config) { c.Listeners[0].Address = ":70000" },
			`config: listeners[0].address: ":70000": port must be a number from 0 to 65535`},
		{"named port", func(c *Config) { c.Listeners[0].Address = "[::1]:xmpp-client" },
			`config: listeners[0].address: "[::1]:xmpp-client": port must be a number from 0 to 65535`},
		{"same address twice", func(c *Config) { c.Listeners[1].Address = ":5222" },
			`config: listeners[1].address: ":5222" is used by another listener`},
		{"no storage", func(c *Config) { c.Storage = Storage{} }, "config: storage: set one of sqlite and postgres"},
		{"scram too high", func(c *Config) { c.Auth.ScramIterations = 2_000_000 },
			"config: auth.scram_iterations: 2000000 is out of range 4096 to 1000000 (RFC 7677 asks for at least 4096)"},
		{"short fast secret", func(c *Config) { c.Auth.FastSecret = "short" },
			"config: auth.fast_secret: 5 characters is too short: at least 32"},
		{"zero limit", func(c *Config) { c.Limits.OutboundQueue = 0 }, "config: limits.outbound_queue: must be positive, not 0"},
		{"zero duration", func(c *Config) { c.Limits.LoginWindow = 0 }, "config: limits.login_window: must be positive, not 0s"},
		{"archive kept forever", func(c *Config) { c.Archive.ExpireAfter = 0 }, ""},
		{"archive never only", func(c *Config) { c.Archive.Default, c.Archive.Allowed = "never", []string{"never"} }, ""},
		{"negative archive period", func(c *Config) { c.Archive.ExpireAfter = Period(-time.Hour) },
			"config: archive.expire_after: must not be negative, not -1h0m0s (0 keeps messages forever)"},
		{"archive default not allowed", func(c *Config) { c.Archive.Allowed = []string{"never"} },
			`config: archive.default: "always" is not among archive.allowed (never): add it there`},
		{"zero archive batch", func(c *Config) { c.Archive.ExpireBatch = -1 }, "config: archive.expire_batch: must be positive, not -1"},
		{"several problems", func(c *Config) { c.Log.Level = "trace"; c.Modules = append(c.Modules, "") },
			"config: modules[" + strconv.Itoa(len(defaultModules())) + "]: empty module ID\n" +
				`config: log.level: unknown level "trace" (want debug, info, warn or error)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestHost(t *testing.T) {
	c := Default()
	c.Hosts = append(c.Hosts, Host{Domain: "example.org", Cert: "a.crt", Key: "a.key"})
	if h, ok := c.Host("example.org"); !ok || h.Cert != "a.crt" {
		t.Errorf("Host(example.org) = %+v, %v", h, ok)
	}
	if _, ok := c.Host("localhost"); !ok {
		t.Error("Host(localhost) not found")
	}
	if h, ok := c.Host("example.net"); ok {
		t.Errorf("Host(example.net) = %+v, want not found", h)
	}
}

// TestExample checks that the example loads and is the development default,
// apart from paths, which become relative to the file.
func TestExample(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xmppd.yaml")
	if err := os.WriteFile(path, []byte(Example()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Example() does not load:\n%v", err)
	}
	want := Default()
	if got := c.DataDir; got != filepath.Join(dir, "xmppd-data") {
		t.Errorf("data_dir = %q, want it in %s", got, dir)
	}
	if got := c.Storage.SQLite; got != filepath.Join(dir, "xmppd-data", "xmppd.db") {
		t.Errorf("sqlite = %q, want it in %s", got, dir)
	}
	c.DataDir, c.Storage.SQLite = want.DataDir, want.Storage.SQLite
	// The module options are the modules' to check (cmd/xmppd's tests do).
	if len(c.ModuleOptions) == 0 {
		t.Error("Example() has no module_options")
	}
	c.ModuleOptions, c.src = nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Example() loads as\n%+v\nwant Default()\n%+v", c, want)
	}
}

// TestExampleCoversEveryKey checks that the example mentions every key of
// every section, so a new field cannot be left undocumented. Deprecated
// keys are left out: the example shows their new place.
func TestExampleCoversEveryKey(t *testing.T) {
	var missing []string
	var visit func(path string, typ reflect.Type)
	visit = func(path string, typ reflect.Type) {
		fields := yamlFields(typ)
		for _, key := range currentKeys(path, fields) {
			if !strings.Contains(example, key+":") {
				missing = append(missing, key)
			}
			ft := fields[key].Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
				p := key
				if path != "" {
					p = path + "." + key
				}
				visit(p, ft)
			}
		}
	}
	visit("", reflect.TypeOf(Config{}))
	if len(missing) > 0 {
		t.Errorf("Example() does not mention: %v", missing)
	}
}

func TestParsePeriod(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
		str     string // String() of the result
	}{
		{in: "0", want: 0, str: "0s"},
		{in: "365d", want: 365 * day, str: "1y"},
		{in: "1y", want: 365 * day, str: "1y"},
		{in: "2w", want: 14 * day, str: "2w"},
		{in: "30d", want: 30 * day, str: "30d"},
		{in: "36h", want: 36 * time.Hour, str: "36h0m0s"},
		{in: "48h", want: 2 * day, str: "2d"},
		{in: "90m", want: 90 * time.Minute, str: "1h30m0s"},
		{in: " 7d ", want: 7 * day, str: "1w"},
		{in: "", wantErr: `empty period (write e.g. "365d", "52w", "1y" or "12h")`},
		{in: "1.5d", wantErr: `"1.5d" is not a period (write a whole number of days, weeks or years like "365d", "52w", "1y", or a duration like "12h")`},
		{in: "d", wantErr: `"d" is not a period (write a whole number of days, weeks or years like "365d", "52w", "1y", or a duration like "12h")`},
		{in: "1mo", wantErr: `"1mo" is not a period (write a whole number of days, weeks or years like "365d", "52w", "1y", or a duration like "12h")`},
		{in: "-1d", wantErr: `"-1d" is negative`},
		{in: "-5s", wantErr: `"-5s" is negative`},
		{in: "999999999y", wantErr: `"999999999y" is too long`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePeriod(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParsePeriod(%q) = %v, %v; want error %s", tt.in, p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Duration() != tt.want {
				t.Fatalf("ParsePeriod(%q) = %v, %v; want %v", tt.in, p.Duration(), err, tt.want)
			}
			if p.String() != tt.str {
				t.Errorf("String() = %q, want %q", p.String(), tt.str)
			}
			if back, err := ParsePeriod(p.String()); err != nil || back != p {
				t.Errorf("ParsePeriod(String()) = %v, %v; want %v", back, err, p)
			}
		})
	}
}

func TestArchiveAllows(t *testing.T) {
	a := Archive{Allowed: []string{ArchiveNever, ArchiveRoster}}
	for mode, want := range map[string]bool{ArchiveAlways: false, ArchiveNever: true, ArchiveRoster: true, "": false} {
		if got := a.Allows(mode); got != want {
			t.Errorf("Allows(%q) = %v, want %v", mode, got, want)
		}
	}
}

// TestPeriodYAML checks that a Period decoded outside Load, as a module's
// block is, reads and writes the same forms.
func TestPeriodYAML(t *testing.T) {
	var v struct {
		P Period `yaml:"p"`
	}
	if err := yaml.Unmarshal([]byte("p: 1y\n"), &v); err != nil || v.P.Duration() != 365*24*time.Hour {
		t.Fatalf("Unmarshal(1y) = %v, %v", v.P, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "p: 1y\n" {
		t.Errorf("Marshal = %q, %v; want \"p: 1y\\n\"", out, err)
	}
	err = yaml.Unmarshal([]byte("\np: soon\n"), &v)
	if want := `yaml: unmarshal errors:` + "\n" + `  line 2: "soon" is not a period`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Unmarshal(soon) = %v, want %s…", err, want)
	}
}
