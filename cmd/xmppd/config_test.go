package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
)

// TestExampleModuleOptions checks that `xmppd config example` shows the
// options block of every module that has options, with every option at its
// default: the config package writes the example but cannot know the
// modules, so this is where the two meet.
func TestExampleModuleOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xmppd.yaml")
	if err := os.WriteFile(path, []byte(config.Example()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := modules.Check(cfg); err != nil {
		t.Fatalf("the example's modules: %v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("the example warns: %q", cfg.Warnings)
	}
	for _, id := range modules.Known() {
		defaults, ok := modules.DefaultOptions(id)
		if !ok {
			continue
		}
		// Decoded over zero values, the block must give the defaults:
		// then no option is missing and none is shown with another value.
		got := reflect.New(reflect.TypeOf(defaults))
		if err := cfg.DecodeModuleOptions(id, got.Interface()); err != nil {
			t.Errorf("module_options.%s: %v", id, err)
			continue
		}
		if !reflect.DeepEqual(got.Elem().Interface(), defaults) {
			t.Errorf("module_options.%s in the example = %+v, want the defaults %+v", id, got.Elem().Interface(), defaults)
		}
		// A false or empty default is invisible to the comparison.
		typ := reflect.TypeOf(defaults)
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if !strings.Contains(config.Example(), "    "+key+":") {
				t.Errorf("module_options.%s.%s is not in the example", id, key)
			}
		}
	}
}
