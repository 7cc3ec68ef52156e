package modules_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
)

// testOptions are the options of the module "test-options".
type testOptions struct {
	Limit  int           `yaml:"limit"`
	Period time.Duration `yaml:"period"`
	Name   string        `yaml:"name"`
}

func (o *testOptions) Validate() error {
	if o.Name == "forbidden" {
		return errors.New("name: forbidden is not allowed")
	}
	return modules.MustBePositive("limit", o.Limit)
}

var defaultTestOptions = testOptions{Limit: 5, Period: time.Minute, Name: "default"}

// withOptions records the options it was built with.
type withOptions struct{ o testOptions }

var (
	builtMu sync.Mutex
	built   []testOptions
)

func init() {
	modules.RegisterWithOptions("test-options", defaultTestOptions, func(o testOptions) *withOptions {
		builtMu.Lock()
		built = append(built, o)
		builtMu.Unlock()
		return &withOptions{o}
	})
}

// loadConfig loads text as xmppd.yaml from a fresh directory, so that
// errors name "xmppd.yaml" and a line.
func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, "xmppd.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load("xmppd.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestOptions(t *testing.T) {
	const head = "hosts: [{domain: localhost}]\nmodules: [ping, test-options]\n"
	tests := []struct {
		name string
		text string
		want testOptions
		err  []string // the lines of the error of Check, in order
	}{{
		name: "no block: the defaults",
		text: head,
		want: defaultTestOptions,
	}, {
		name: "empty block: the defaults",
		text: head + "module_options:\n  test-options:\n",
		want: defaultTestOptions,
	}, {
		name: "what is set replaces its default only",
		text: head + "module_options:\n  test-options:\n    limit: 7\n    period: 1h\n",
		want: testOptions{Limit: 7, Period: time.Hour, Name: "default"},
	}, {
		name: "flow style",
		text: head + "module_options: {test-options: {name: x}}\n",
		want: testOptions{Limit: 5, Period: time.Minute, Name: "x"},
	}, {
		name: "unknown key",
		text: head + "module_options:\n  test-options:\n    limit: 7\n    limt: 8\n",
		err:  []string{`xmppd.yaml:6: unknown key "limt" in module_options.test-options (known keys: limit, name, period)`},
	}, {
		name: "wrong type",
		text: head + "module_options:\n  test-options:\n    limit: many\n",
		err:  []string{"xmppd.yaml:5: cannot unmarshal !!str `many` into int"},
	}, {
		name: "duration as a number",
		text: head + "module_options:\n  test-options:\n    period: 60\n",
		err:  []string{"xmppd.yaml:5: cannot unmarshal !!int `60` into time.Duration" + ` (write a duration like "30s", "5m" or "1h")`},
	}, {
		name: "not a mapping",
		text: head + "module_options:\n  test-options: 5\n",
		err:  []string{"xmppd.yaml:4: module_options.test-options: must be a mapping of the module's options (key: value)"},
	}, {
		name: "Validate fails",
		text: head + "module_options:\n  test-options:\n    limit: -1\n",
		err:  []string{"xmppd.yaml:4: module_options.test-options: limit: must be positive, not -1"},
	}, {
		name: "options for an unknown module",
		text: head + "module_options:\n  test-options: {limit: 1}\n  no-such-module: {limit: 1}\n",
		err:  []string{`xmppd.yaml:5: module_options.no-such-module: options for unknown module "no-such-module" (known: ` + knownList() + `)`},
	}, {
		name: "options for a module not enabled",
		text: "hosts: [{domain: localhost}]\nmodules: [ping]\nmodule_options:\n  test-options: {limit: 1}\n",
		err:  []string{`xmppd.yaml:4: module_options.test-options: options for module "test-options", which is not enabled: add it to modules, or remove its options`},
	}, {
		name: "every problem at once",
		text: "hosts: [{domain: localhost}]\nmodules: [test-options, nope]\nmodule_options:\n  test-options: {limit: 0, colour: red}\n  ping: {}\n",
		err: []string{
			`xmppd.yaml:2: modules[1]: unknown module "nope" (known: ` + knownList() + `)`,
			`xmppd.yaml:5: module_options.ping: options for module "ping", which is not enabled: add it to modules, or remove its options`,
			`xmppd.yaml:4: unknown key "colour" in module_options.test-options (known keys: limit, name, period)`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadConfig(t, tt.text)
			err := modules.Check(c)
			if tt.err != nil {
				if err == nil {
					t.Fatal("Check succeeded")
				}
				if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.err) {
					t.Errorf("Check:\n%v\nwant:\n%s", err, strings.Join(tt.err, "\n"))
				}
				// Start refuses the same configuration.
				if set, err := modules.Start(context.Background(), c.Modules, newRouter(t), nil, c, discard, nil); err == nil {
					set.Stop()
					t.Error("Start succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			builtMu.Lock()
			built = nil
			builtMu.Unlock()
			set, err := modules.Start(context.Background(), c.Modules, newRouter(t), nil, c, discard, nil)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer set.Stop()
			builtMu.Lock()
			defer builtMu.Unlock()
			if len(built) != 1 || built[0] != tt.want {
				t.Errorf("module built with %+v, want %+v", built, tt.want)
			}
		})
	}
}

// TestSetModuleOptions checks options set in code, as tests set them.
func TestSetModuleOptions(t *testing.T) {
	c := config.Default()
	c.Modules = []string{"test-options"}
	c.SetModuleOptions("test-options", map[string]any{"limit": 9, "period": 2 * time.Second})
	if err := modules.Check(c); err != nil {
		t.Fatal(err)
	}
	c.SetModuleOptions("test-options", map[string]any{"limit": 0})
	if err := modules.Check(c); err == nil || err.Error() != "config: module_options.test-options: limit: must be positive, not 0" {
		t.Errorf("Check = %v", err)
	}
}

func TestDefaultOptions(t *testing.T) {
	if o, ok := modules.DefaultOptions("test-options"); !ok || o != any(defaultTestOptions) {
		t.Errorf("DefaultOptions(test-options) = %v, %v", o, ok)
	}
	if o, ok := modules.DefaultOptions("ping"); ok {
		t.Errorf("DefaultOptions(ping) = %v, want none", o)
	}
}

func knownList() string {
	return "[" + strings.Join(modules.Known(), " ") + "]"
}

var discard = slog.New(slog.DiscardHandler)
