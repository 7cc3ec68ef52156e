package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, expands, decodes, defaults and validates the YAML file at
// path, and reports every problem with the file name and line, like a
// compiler: "xmppd.yaml:7: hosts[1].domain: ...". It returns the config
// only when it is valid.
//
// The file is parsed into a yaml.Node first because only the node tree
// keeps line numbers. ${VAR} is expanded in the parsed values, not in the
// raw text, so that a secret containing YAML syntax (": ", "#", quotes)
// cannot change the file's structure, and a ${VAR} in a comment is left
// alone. Unknown keys are found by walking the node tree against the
// struct types: yaml.v3's KnownFields only works in Decoder.Decode, not in
// Node.Decode, and the walk can also say which section the key is in.
//
// Relative paths in the file (data_dir, storage.sqlite, hosts[].cert and
// .key, and the defaults derived from data_dir) are relative to the
// file's directory, so the server finds the same files whatever directory
// it is started from.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f := &file{name: path, lines: make(map[string]int)}
	c, err := f.decode(data)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	c.resolvePaths(filepath.Dir(path))
	errs := f.moveDeprecated(c)
	for _, p := range c.problems() {
		errs = append(errs, f.errorf(f.lineOf(p.path), "%s: %s", p.path, p.msg))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.src = f
	return c, nil
}

// Errorf makes an error about the setting at path ("modules[2]"), placed
// like Load's own: "xmppd.yaml:7: modules[2]: ...", or "config: ..." for a
// configuration built in code. It is for checks that only other packages
// can make, such as whether a module ID names a module.
func (c *Config) Errorf(path, format string, args ...any) error {
	f := c.src
	if f == nil {
		f = &file{}
	}
	return f.errorf(f.lineOf(path), "%s: %w", path, fmt.Errorf(format, args...))
}

// file is one configuration file being decoded.
type file struct {
	name string
	// lines maps a setting's path ("hosts[1].domain") to the line it is on.
	lines map[string]int
	errs  []error
}

// errorf makes an error that starts with the file name and, if known
// (line > 0), the line.
func (f *file) errorf(line int, format string, args ...any) error {
	pos := f.name
	if pos == "" {
		pos = "config" // not from a file: built in code, as Validate says
	}
	if line > 0 {
		pos += ":" + strconv.Itoa(line)
	}
	return fmt.Errorf("%s: %w", pos, fmt.Errorf(format, args...))
}

func (f *file) fail(line int, format string, args ...any) {
	f.errs = append(f.errs, f.errorf(line, format, args...))
}

// lineOf finds the line of path, or else of its nearest ancestor that is in
// the file: a problem with a defaulted or missing setting points at the
// section it belongs in.
func (f *file) lineOf(path string) int {
	for path != "" && f.lines != nil {
		if line, ok := f.lines[path]; ok {
			return line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// decode parses data into a Config without defaults, recording lines.
func (f *file) decode(data []byte) (*Config, error) {
	// A bool's zero value is a choice, so its default goes in before
	// decoding; an absent key then leaves it alone.
	c := &Config{Auth: Auth{AllowPlain: defaultAllowPlain}, S2S: S2S{Enabled: true}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return c, nil // an empty file; validation says what is missing
	case err != nil:
		return nil, f.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, f.errorf(extra.Line, "a second YAML document; the file must hold one")
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	f.expand(root)
	f.walk(root, reflect.TypeOf(Config{}), "", 0)
	if len(f.errs) > 0 {
		return nil, errors.Join(f.errs...)
	}
	if err := root.Decode(c); err != nil {
		return nil, f.yamlError(err)
	}
	f.placeModuleOptions(c)
	return c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites yaml.v3's "yaml: line 3: ..." messages into the
// file:line form of the rest.
func (f *file) yamlError(err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	errs := make([]error, len(msgs))
	for i, msg := range msgs {
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		if strings.HasSuffix(msg, "into time.Duration") {
			msg += ` (write a duration like "30s", "5m" or "1h")`
		}
		errs[i] = f.errorf(line, "%s", msg)
	}
	return errors.Join(errs...)
}

// maxDepth stops the walk on pathological nesting or alias cycles; a real
// configuration is a few levels deep.
const maxDepth = 32

// walk checks n against the Go type t it will be decoded into: every
// mapping key must name a field. On the way it records each setting's line.
// Kinds that do not match t are left for Node.Decode to report.
func (f *file) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		f.fail(n.Line, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		f.walk(n.Alias, t, path, depth+1)
		return
	}
	switch {
	case t == moduleOptionsType && n.Kind == yaml.MappingNode:
		f.walkModuleOptions(n, path)
	case t == periodType:
		f.walkPeriod(n, path)
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		f.walkStruct(n, t, path, depth)
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			f.lines[p] = item.Line
			f.walk(item, t.Elem(), p, depth+1)
		}
	}
}

func (f *file) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Value == "<<" && key.Tag == "!!merge" {
			f.walk(value, t, path, depth+1) // a merged mapping is part of this one
			continue
		}
		field, ok := fields[key.Value]
		if !ok {
			f.fail(key.Line, "unknown key %q %s (known keys: %s)",
				key.Value, where(path), strings.Join(currentKeys(path, fields), ", "))
			continue
		}
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		f.lines[p] = key.Line
		f.walk(value, field.Type, p, depth+1)
	}
}

func where(path string) string {
	if path == "" {
		return "at top level"
	}
	return "in " + path
}

// yamlFields maps the YAML keys of struct type t to its fields, named the
// way yaml.v3 names them.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(sf.Name)
		}
		fields[name] = sf
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expand replaces ${VAR} in every scalar value of the tree (not in keys)
// with the environment variable VAR. An unset variable is an error; a set
// but empty one is not, as with a shell.
func (f *file) expand(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			f.expand(c)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			f.expand(n.Content[i])
		}
	case yaml.ScalarNode:
		value, err := expandEnv(n.Value)
		if err != nil {
			f.fail(n.Line, "%v", err)
			return
		}
		if value != n.Value && n.Style == 0 {
			// A plain scalar's type was guessed from its text; guess
			// again from the new text, so that "${PORT}" can be an int.
			n.Tag = ""
		}
		n.Value = value
	}
	// An AliasNode is left alone: its anchor is expanded where it is
	// defined, and expanding twice would undo "$${".
}

// expandEnv replaces ${VAR} with the value of VAR and "$${" with a literal
// "${". A lone "$" is kept, since passwords contain them.
func expandEnv(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1]) // "$${": keep "${" without the escape
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s[i:])
		}
		name := s[i+2 : i+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: not a valid environment variable name", name)
		}
		value, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(value)
		s = s[i+end+1:]
	}
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// resolvePaths makes the relative paths of a loaded file relative to dir,
// the file's directory.
func (c *Config) resolvePaths(dir string) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.DataDir = rel(c.DataDir)
	// SQLite also takes URIs ("file:x.db?mode=ro") and ":memory:"; those
	// are passed through as written.
	if s := c.Storage.SQLite; s != ":memory:" && !strings.HasPrefix(s, "file:") {
		c.Storage.SQLite = rel(s)
	}
	for i := range c.Hosts {
		c.Hosts[i].Cert = rel(c.Hosts[i].Cert)
		c.Hosts[i].Key = rel(c.Hosts[i].Key)
	}
	c.S2S.CAFile = rel(c.S2S.CAFile)
}
