package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// wantOptions checks that c has exactly the module blocks of want, each
// equal to the YAML text given for it.
func wantOptions(t *testing.T, c *Config, want map[string]string) {
	t.Helper()
	if got := c.ModuleOptionsIDs(); len(got) != len(want) {
		t.Errorf("module options for %v, want %d blocks", got, len(want))
	}
	for id, text := range want {
		o := c.ModuleOptions[id]
		if o == nil {
			t.Errorf("no block for %s", id)
			continue
		}
		var got, w map[string]any
		if o.node != nil {
			if err := o.node.Decode(&got); err != nil {
				t.Fatal(err)
			}
		}
		if err := yaml.Unmarshal([]byte(text), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("module_options.%s = %v, want %v", id, got, w)
		}
	}
}

// The option types of this test: what modules/roster and modules/register
// declare, as far as the config package can know.
type (
	rosterOptions struct {
		MaxItems int `yaml:"max_items"`
	}
	registerOptions struct {
		AllowRegistration bool          `yaml:"allow_registration"`
		PerIP             int           `yaml:"per_ip"`
		Window            time.Duration `yaml:"window"`
	}
)

var (
	defaultRoster   = rosterOptions{MaxItems: 1000}
	defaultRegister = registerOptions{PerIP: 3, Window: time.Hour}
)

func TestModuleOptions(t *testing.T) {
	const head = "hosts: [{domain: example.org}]\n"
	tests := []struct {
		name     string
		text     string
		roster   rosterOptions
		register registerOptions
		warnings []string
		err      []string // the lines of Load's error
	}{{
		name:     "no options: the modules' defaults",
		text:     head,
		roster:   defaultRoster,
		register: defaultRegister,
	}, {
		name:   "new keys",
		text:   head + "module_options:\n  roster: {max_items: 50}\n  register:\n    allow_registration: true\n    window: 10m\n",
		roster: rosterOptions{MaxItems: 50},
		register: registerOptions{
			AllowRegistration: true, PerIP: 3, Window: 10 * time.Minute,
		},
	}, {
		name:     "old limit: a warning, and the same effect",
		text:     head + "limits:\n  max_roster_items: 50\n",
		roster:   rosterOptions{MaxItems: 50},
		register: defaultRegister,
		warnings: []string{"xmppd.yaml:3: limits.max_roster_items is deprecated: write module_options.roster.max_items instead"},
	}, {
		name:   "old registration section",
		text:   head + "registration:\n  enabled: true\n  per_ip: 1\n  window: 5m\n",
		roster: defaultRoster,
		register: registerOptions{
			AllowRegistration: true, PerIP: 1, Window: 5 * time.Minute,
		},
		warnings: []string{
			"xmppd.yaml:3: registration.enabled is deprecated: write module_options.register.allow_registration instead",
			"xmppd.yaml:4: registration.per_ip is deprecated: write module_options.register.per_ip instead",
			"xmppd.yaml:5: registration.window is deprecated: write module_options.register.window instead",
		},
	}, {
		name:     "old and new keys for different options of one module",
		text:     head + "registration: {per_ip: 1}\nmodule_options:\n  register: {window: 5m}\n",
		roster:   defaultRoster,
		register: registerOptions{PerIP: 1, Window: 5 * time.Minute},
		warnings: []string{"xmppd.yaml:2: registration.per_ip is deprecated: write module_options.register.per_ip instead"},
	}, {
		name:     "old zero limit meant the default, and still does",
		text:     head + "limits: {max_roster_items: 0}\n",
		roster:   defaultRoster,
		register: defaultRegister,
		warnings: []string{"xmppd.yaml:2: limits.max_roster_items is deprecated: write module_options.roster.max_items instead"},
	}, {
		name:     "old key of a module not enabled: no effect, as before",
		text:     head + "modules: [ping]\nlimits: {max_roster_items: 50}\nregistration: {enabled: false}\n",
		roster:   defaultRoster,
		register: defaultRegister,
		warnings: []string{
			`xmppd.yaml:4: registration.enabled is deprecated, and has no effect: module "register" is not enabled`,
			`xmppd.yaml:3: limits.max_roster_items is deprecated, and has no effect: module "roster" is not enabled`,
		},
	}, {
		name: "old and new key both set",
		text: head + "limits:\n  max_roster_items: 50\nmodule_options:\n  roster:\n    max_items: 60\n",
		err:  []string{"xmppd.yaml:3: limits.max_roster_items and module_options.roster.max_items (line 6) set the same option: keep only module_options.roster.max_items"},
	}, {
		name: "registration enabled without the register module",
		text: head + "modules: [ping, roster]\nregistration:\n  enabled: true\n",
		err:  []string{`xmppd.yaml:4: registration.enabled: in-band registration needs the "register" module: add it to modules`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(t, "xmppd.yaml", tt.text)
			if tt.err != nil {
				if err == nil {
					t.Fatal("Load succeeded")
				}
				if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.err) {
					t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.err, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.Warnings, tt.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(tt.warnings, "\n"))
			}
			roster, register := defaultRoster, defaultRegister
			if err := c.DecodeModuleOptions("roster", &roster); err != nil {
				t.Fatal(err)
			}
			if err := c.DecodeModuleOptions("register", &register); err != nil {
				t.Fatal(err)
			}
			if roster != tt.roster || register != tt.register {
				t.Errorf("options %+v %+v, want %+v %+v", roster, register, tt.roster, tt.register)
			}
			// The old fields are emptied: nothing may read them any more.
			if c.Registration != (Registration{}) || c.Limits.MaxRosterItems != 0 {
				t.Errorf("old fields left set: %+v, %d", c.Registration, c.Limits.MaxRosterItems)
			}
		})
	}
}

func TestDecodeModuleOptionsErrors(t *testing.T) {
	const head = "hosts: [{domain: example.org}]\nmodule_options:\n"
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", head + "  roster:\n    max_items: 5\n    max_iterms: 6\n",
			`xmppd.yaml:5: unknown key "max_iterms" in module_options.roster (known keys: max_items)`},
		{"wrong type", head + "  roster: {max_items: lots}\n",
			"xmppd.yaml:3: cannot unmarshal !!str `lots` into int"},
		{"not a mapping", head + "  roster: [max_items]\n",
			"xmppd.yaml:3: module_options.roster: must be a mapping of the module's options (key: value)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(t, "xmppd.yaml", tt.text)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			o := defaultRoster
			if err := c.DecodeModuleOptions("roster", &o); err == nil || err.Error() != tt.want {
				t.Errorf("DecodeModuleOptions = %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestModuleOptionsError checks where a module's complaint about its
// options (its Validate) is placed: at its block, or for a moved key at
// the old key's line.
func TestModuleOptionsError(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"hosts: [{domain: example.org}]\nmodule_options:\n  roster:\n    max_items: -1\n",
			"xmppd.yaml:3: module_options.roster: max_items: must be positive"},
		{"hosts: [{domain: example.org}]\nlimits:\n  max_roster_items: -1\n",
			"xmppd.yaml:3: module_options.roster: max_items: must be positive"},
	} {
		c, err := loadString(t, "xmppd.yaml", tt.text)
		if err != nil {
			t.Fatal(err)
		}
		cause := errors.New("max_items: must be positive")
		err = c.ModuleOptionsError("roster", cause)
		if err.Error() != tt.want || !errors.Is(err, cause) {
			t.Errorf("ModuleOptionsError = %v, want %s wrapping the cause", err, tt.want)
		}
	}
	if got := Default().ModuleOptionsError("roster", errors.New("x")).Error(); got != "config: module_options.roster: x" {
		t.Errorf("without a file: %s", got)
	}
}

// TestOldFieldsInCode checks that the deprecated fields, read only from a
// file, are refused when a configuration built in code sets them.
func TestOldFieldsInCode(t *testing.T) {
	c := Default()
	c.Limits.MaxVCardSize = 10
	c.Registration.Enabled = true
	want := "config: registration.enabled: deprecated and read only from a file: use SetModuleOptions(\"register\", ...) with allow_registration\n" +
		"config: limits.max_vcard_size: deprecated and read only from a file: use SetModuleOptions(\"vcard\", ...) with max_size"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
}

func TestSetModuleOptions(t *testing.T) {
	c := Default()
	c.SetModuleOptions("register", registerOptions{AllowRegistration: true, PerIP: 2, Window: time.Minute})
	c.SetModuleOptions("roster", map[string]any{"max_items": 7})
	register, roster := defaultRegister, defaultRoster
	if err := c.DecodeModuleOptions("register", &register); err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeModuleOptions("roster", &roster); err != nil {
		t.Fatal(err)
	}
	if register != (registerOptions{AllowRegistration: true, PerIP: 2, Window: time.Minute}) || roster.MaxItems != 7 {
		t.Errorf("decoded %+v %+v", register, roster)
	}
	c.SetModuleOptions("roster", map[string]any{"max": 7})
	if err := c.DecodeModuleOptions("roster", &roster); err == nil ||
		err.Error() != `config: unknown key "max" in module_options.roster (known keys: max_items)` {
		t.Errorf("unknown key set in code: %v", err)
	}
}

// TestErrorf checks that other packages' errors about a setting are placed
// like Load's own.
func TestErrorf(t *testing.T) {
	c, err := loadString(t, "xmppd.yaml", "hosts: [{domain: example.org}]\nmodules:\n  - ping\n  - nope\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		c          *Config
		path, want string
	}{
		{c, "modules[1]", "xmppd.yaml:4: modules[1]: no such thing: 1"},
		{c, "storage", "xmppd.yaml: storage: no such thing: 1"}, // not in the file
		{Default(), "modules[1]", "config: modules[1]: no such thing: 1"},
	} {
		if got := tt.c.Errorf(tt.path, "no such thing: %d", 1).Error(); got != tt.want {
			t.Errorf("Errorf(%s) = %s, want %s", tt.path, got, tt.want)
		}
	}
}
