package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"

	"gopkg.in/yaml.v3"
)

// ModuleOptions is one module's block under module_options, kept as YAML
// with its position. The config package does not know the modules (they
// import it, not the other way round), so the module registry decodes the
// block into the module's own options type with DecodeModuleOptions, as
// strictly as the rest of the file.
type ModuleOptions struct {
	node *yaml.Node // a mapping; nil for an empty block
	file string     // the file it came from, "" if it was set in code
	path string     // how errors name it: "module_options.roster"
	line int        // the line of its key, 0 if unknown
}

// UnmarshalYAML implements yaml.Unmarshaler: the block is kept undecoded.
func (o *ModuleOptions) UnmarshalYAML(n *yaml.Node) error {
	o.node = n
	return nil
}

var moduleOptionsType = reflect.TypeOf(map[string]*ModuleOptions(nil))

// walkModuleOptions records the line of each module's block; what is inside
// a block is checked when the block is decoded (DecodeModuleOptions).
func (f *file) walkModuleOptions(n *yaml.Node, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		f.lines[path+"."+n.Content[i].Value] = n.Content[i].Line
	}
}

// placeModuleOptions gives every decoded block its file and line, and an
// empty block ("roster:" with nothing after it) a value.
func (f *file) placeModuleOptions(c *Config) {
	for id, o := range c.ModuleOptions {
		if o == nil {
			o = &ModuleOptions{}
			c.ModuleOptions[id] = o
		}
		o.file = f.name
		o.path = "module_options." + id
		o.line = f.lines[o.path]
	}
}

// ModuleOptionsIDs returns the module IDs that have an options block,
// sorted, so that the module registry can tell blocks for unknown or
// disabled modules.
func (c *Config) ModuleOptionsIDs() []string {
	ids := make([]string, 0, len(c.ModuleOptions))
	for id := range c.ModuleOptions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// DecodeModuleOptions decodes the block of module id into v, a pointer to
// the module's options struct that already holds the defaults, so that
// keys absent from the block keep them. An unknown key is an error naming
// the key, the line and the keys there are, as everywhere in the file. A
// module without a block keeps its defaults.
func (c *Config) DecodeModuleOptions(id string, v any) error {
	o := c.ModuleOptions[id]
	if o == nil || o.node == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: %s: options must decode into a pointer to a struct, not %T", o.path, v)
	}
	f := &file{name: o.file, lines: make(map[string]int)}
	n := o.node
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return f.errorf(n.Line, "%s: must be a mapping of the module's options (key: value)", o.path)
	}
	f.walk(n, t.Elem(), o.path, 0)
	if len(f.errs) > 0 {
		return errors.Join(f.errs...)
	}
	if err := n.Decode(v); err != nil {
		return f.yamlError(err)
	}
	return nil
}

// ModuleOptionsError places err, a problem with the options of module id
// (say, from their validation), at the line of the module's block:
// "xmppd.yaml:40: module_options.roster: ...".
func (c *Config) ModuleOptionsError(id string, err error) error {
	o := c.ModuleOptions[id]
	if o == nil {
		o = &ModuleOptions{path: "module_options." + id}
	}
	f := &file{name: o.file}
	return f.errorf(o.line, "%s: %w", o.path, err)
}

// SetModuleOptions replaces the block of module id with v encoded as YAML
// (a map of option keys, or the module's options struct), as if the file
// had said so: for configurations built in code, such as tests'. It is
// decoded as strictly as a file's block. v that cannot be encoded as YAML
// is a programming error, and panics.
func (c *Config) SetModuleOptions(id string, v any) {
	n := new(yaml.Node)
	if err := n.Encode(v); err != nil {
		panic(fmt.Sprintf("config: SetModuleOptions(%q): %v", id, err))
	}
	if c.ModuleOptions == nil {
		c.ModuleOptions = make(map[string]*ModuleOptions)
	}
	c.ModuleOptions[id] = &ModuleOptions{node: n, path: "module_options." + id}
}
