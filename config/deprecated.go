package config

import (
	"reflect"
	"slices"

	"gopkg.in/yaml.v3"
)

// movedKey is a setting that moved from the shared sections into a
// module's own block, and is still read at its old place so that existing
// files keep working.
type movedKey struct {
	old    string // its old path: "limits.max_roster_items"
	module string // the module whose block holds it now
	key    string // its key in that block
	// field points at the deprecated field that the old key decodes into.
	field func(c *Config) any
}

// movedKeys lists the settings that moved into module_options.
var movedKeys = []movedKey{
	{"registration.enabled", "register", "allow_registration", func(c *Config) any { return &c.Registration.Enabled }},
	{"registration.per_ip", "register", "per_ip", func(c *Config) any { return &c.Registration.PerIP }},
	{"registration.window", "register", "window", func(c *Config) any { return &c.Registration.Window }},
	{"limits.max_roster_items", "roster", "max_items", func(c *Config) any { return &c.Limits.MaxRosterItems }},
	{"limits.max_offline_messages", "offline", "max_messages", func(c *Config) any { return &c.Limits.MaxOfflineMessages }},
	{"limits.max_vcard_size", "vcard", "max_size", func(c *Config) any { return &c.Limits.MaxVCardSize }},
	{"limits.max_blocklist_items", "blocking", "max_items", func(c *Config) any { return &c.Limits.MaxBlocklistItems }},
}

// currentKeys returns the keys of fields, a section at path, sorted and
// without the deprecated ones, for an unknown key's hint.
func currentKeys(path string, fields map[string]reflect.StructField) []string {
	var keys []string
	for _, k := range sortedKeys(fields) {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if p == "registration" || slices.ContainsFunc(movedKeys, func(m movedKey) bool { return m.old == p }) {
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

// moveDeprecated moves the settings of a loaded file that are written at
// their old place into their module's block, as if the file had written
// them there, and warns about each (Config.Warnings). Writing a setting at
// both places is an error naming both. An old setting of a module that is
// not enabled has no effect, as before, and only warns; except an enabled
// registration without the register module, which would now silently not
// register anyone, and is an error.
//
// A zero value at the old place meant "the default" (only registration's
// enabled is a real false), so it is not moved and the module's default
// stays.
func (f *file) moveDeprecated(c *Config) []error {
	var errs []error
	for _, m := range movedKeys {
		line, written := f.lines[m.old]
		ptr := reflect.ValueOf(m.field(c)).Elem()
		value := ptr.Interface()
		ptr.SetZero() // read only here; the modules read their block
		if !written {
			continue
		}
		newPath := "module_options." + m.module + "." + m.key
		block := c.ModuleOptions[m.module]
		if newLine, ok := block.keyLine(m.key); ok {
			errs = append(errs, f.errorf(line, "%s and %s (line %d) set the same option: keep only %s",
				m.old, newPath, newLine, newPath))
			continue
		}
		if !slices.Contains(c.Modules, m.module) {
			if m.old == "registration.enabled" && value == true {
				errs = append(errs, f.errorf(line, "%s: in-band registration needs the %q module: add it to modules", m.old, m.module))
				continue
			}
			f.warn(c, line, "%s is deprecated, and has no effect: module %q is not enabled", m.old, m.module)
			continue
		}
		f.warn(c, line, "%s is deprecated: write %s instead", m.old, newPath)
		if reflect.ValueOf(value).IsZero() && m.old != "registration.enabled" {
			continue
		}
		if err := f.addModuleOption(c, m.module, m.key, value, line); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// warn records a warning placed like an error.
func (f *file) warn(c *Config, line int, format string, args ...any) {
	c.Warnings = append(c.Warnings, f.errorf(line, format, args...).Error())
}

// addModuleOption adds key: value to module's block (making the block if
// there is none), placed at line, so that decoding and validation errors
// point at the line where the value really is.
func (f *file) addModuleOption(c *Config, module, key string, value any, line int) error {
	v := new(yaml.Node)
	if err := v.Encode(value); err != nil {
		return f.errorf(line, "move to module_options.%s.%s: %v", module, key, err)
	}
	v.Line = line
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: line}
	if c.ModuleOptions == nil {
		c.ModuleOptions = make(map[string]*ModuleOptions)
	}
	o := c.ModuleOptions[module]
	if o == nil {
		o = &ModuleOptions{file: f.name, path: "module_options." + module, line: line}
		c.ModuleOptions[module] = o
	}
	switch {
	case o.node == nil: // an empty block
		o.node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
	case o.node.Kind != yaml.MappingNode:
		return nil // decoding the block reports that it is no mapping
	}
	o.node.Content = append(o.node.Content, k, v)
	return nil
}

// keyLine returns the line of key in the block, and whether it is there.
func (o *ModuleOptions) keyLine(key string) (int, bool) {
	if o == nil || o.node == nil || o.node.Kind != yaml.MappingNode {
		return 0, false
	}
	for i := 0; i+1 < len(o.node.Content); i += 2 {
		if o.node.Content[i].Value == key {
			return o.node.Content[i].Line, true
		}
	}
	return 0, false
}

// checkDeprecated rejects the old fields in a configuration built in code:
// they are only read from a file (moveDeprecated), so setting them in
// code would silently do nothing.
func (c *Config) checkDeprecated(ps *problems) {
	for _, m := range movedKeys {
		if !reflect.ValueOf(m.field(c)).Elem().IsZero() {
			ps.add(m.old, "deprecated and read only from a file: use SetModuleOptions(%q, ...) with %s", m.module, m.key)
		}
	}
}
