package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// A Command is one sysadmin operation, defined once for every front end: the
// CLI (cmd/xmppd builds its cobra commands from Commands), and later the
// control socket and XEP-0133 ad-hoc commands (an XEP-0004 form per
// Command, a field per Arg). It therefore says everything a front end needs
// (what the operation is called, what it takes, how to check it, what it
// returns) and nothing about how a front end asks or answers.
type Command struct {
	// Path names the command as words, the group first: "user add".
	Path string
	// Short is a one-line help text, shown by the CLI and as a form's title.
	Short string
	// Long, if set, is what else the operator must know, in a few
	// sentences (what takes effect only after a restart); the CLI shows
	// it after Short in the command's help, a form as its instructions.
	Long string
	// Args are what the command takes, positional ones in order.
	Args []Arg
	// NeedsConfig says that the command acts on the configuration
	// (Env.Config): Parse loads it first, so that a broken configuration is
	// what the operator hears about before any argument.
	NeedsConfig bool
	// Check, if set, validates the arguments together once each has been
	// checked by its Kind (a --from that must be a served domain).
	Check func(env *Env, in Input) error
	// Run performs the operation. A Result may come with an error: a
	// diagnostic that found a problem reports what it saw and still fails.
	Run func(ctx context.Context, env *Env, in Input) (Result, error)
}

// Name is the command's last word ("add" for "user add").
func (c *Command) Name() string {
	words := strings.Fields(c.Path)
	return words[len(words)-1]
}

// Group is the words of Path before the Name ("user"), "" for none.
func (c *Command) Group() string {
	words := strings.Fields(c.Path)
	return strings.Join(words[:len(words)-1], " ")
}

// Kind is what an argument holds: it decides how the argument is checked
// and what XEP-0004 field a form gives it.
type Kind int

// The kinds of argument.
const (
	// String is any text.
	String Kind = iota
	// Account is a local account: user@domain, the domain served.
	Account
	// JID is a bare JID, local or remote, or a domain (a roster contact,
	// an entity affiliated with a room).
	JID
	// Domain is a domain name.
	Domain
	// Int is a whole number.
	Int
	// Bool is true or false.
	Bool
	// File is a path to a file.
	File
	// Time is a point in time: an XEP-0082 DateTime (RFC 3339,
	// "2024-05-01T12:00:00Z") or a date ("2024-05-01", its midnight UTC).
	Time
	// Room is a multi-user chat room's bare JID, room@service; that the
	// service is one this server runs is the command's to check, since
	// only the muc module knows (Env.RoomServices).
	Room
)

// An Arg is one input of a Command.
type Arg struct {
	// Name is the key under which Input holds the value and, for a flag,
	// the flag's name (--name). A positional argument is shown in usage as
	// its Name in capitals (JID).
	Name string
	// Label is a short human description, for usage and form fields.
	Label string
	// Kind says how the value is checked.
	Kind Kind
	// Required arguments must be given; Parse names a missing one.
	Required bool
	// Secret marks a password: never taken from the command line or
	// echoed. The CLI asks for it on the terminal or reads it from standard
	// input (--NAME-stdin) once the other arguments are checked; a form makes
	// it a text-private field.
	Secret bool
	// Positional arguments come in order after the command in the CLI;
	// the others are flags.
	Positional bool
	// Repeated arguments may be given several times (a flag repeated, a
	// multi-valued form field).
	Repeated bool
	// Default is the value of an argument that was not given.
	Default string
}

// FieldType is the XEP-0004 §3.3 field type a data form gives the argument.
func (a Arg) FieldType() string {
	switch {
	case a.Secret:
		return "text-private"
	case a.Kind == Bool:
		return "boolean"
	case (a.Kind == Account || a.Kind == JID || a.Kind == Room) && a.Repeated:
		return "jid-multi"
	case a.Kind == Account || a.Kind == JID || a.Kind == Room:
		return "jid-single"
	case a.Repeated:
		return "text-multi"
	}
	return "text-single"
}

// Result is what a Command returns: a value for front ends that render it
// themselves (a control socket's JSON, an ad-hoc command's form), and the
// text the CLI prints, each line ending in a newline.
type Result struct {
	// Value is the structured result, its type documented by the command
	// (a []jid.JID for user list); nil when there is nothing beyond Text.
	Value any
	// Text is the rendering for a terminal.
	Text string
	// Warnings are things the operator should fix that did not stop the
	// command (a deprecated configuration key); the CLI prints them to
	// standard error.
	Warnings []string
}

// textf is a Result of one formatted line.
func textf(value any, format string, args ...any) Result {
	return Result{Value: value, Text: fmt.Sprintf(format+"\n", args...)}
}

// linesOf is the Result of a listing: the items as its Value, and a line
// of each, as line shows it, as its Text.
func linesOf[T any](items []T, line func(T) string) Result {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(line(it))
		b.WriteByte('\n')
	}
	return Result{Value: items, Text: b.String()}
}

// Input holds a Command's arguments, parsed: each as given and, for JIDs
// and domains, in normalised form.
type Input struct {
	cmd    *Command
	values map[string][]string
	jids   map[string]jid.JID
	times  map[string]time.Time
}

// String returns the argument as given (its first value if repeated), or
// its Default.
func (in Input) String(name string) string {
	if v := in.values[name]; len(v) > 0 {
		return v[0]
	}
	if a, ok := in.cmd.arg(name); ok {
		return a.Default
	}
	return ""
}

// Strings returns every value given of a repeated argument.
func (in Input) Strings(name string) []string { return in.values[name] }

// JID returns the normalised JID of an Account, JID, Domain or Room
// argument; the zero JID if it was not given.
func (in Input) JID(name string) jid.JID { return in.jids[name] }

// Time returns a Time argument, in UTC; the zero time if it was not given.
func (in Input) Time(name string) time.Time { return in.times[name] }

// Int returns an Int argument; Parse has checked that it is one.
func (in Input) Int(name string) int {
	n, _ := strconv.Atoi(in.String(name))
	return n
}

// Bool returns a Bool argument; Parse has checked that it is one.
func (in Input) Bool(name string) bool {
	b, _ := strconv.ParseBool(in.String(name))
	return b
}

// SetSecret sets a Secret argument that the front end asked for after
// Parse (the CLI prompts only once the other arguments are known to be
// good, so that a typo in the JID does not waste a password).
func (in Input) SetSecret(name, value string) error {
	if a, ok := in.cmd.arg(name); !ok || !a.Secret {
		return fmt.Errorf("%s: %q is not a secret argument", in.cmd.Path, name)
	}
	in.values[name] = []string{value}
	return nil
}

func (c *Command) arg(name string) (Arg, bool) {
	for _, a := range c.Args {
		if a.Name == name {
			return a, true
		}
	}
	return Arg{}, false
}

// Parse checks raw arguments (name to the values given) against the
// command's Args: it loads the configuration first if the command
// NeedsConfig, then checks each argument by its Kind, in the order of Args,
// and finally runs Check. Required arguments missing from raw are named in
// the error, except secrets, which a front end may ask for after Parse (Exec
// checks them). An optional argument given as "" counts as not given.
func (c *Command) Parse(env *Env, raw map[string][]string) (Input, error) {
	in := Input{cmd: c, values: map[string][]string{}, jids: map[string]jid.JID{}, times: map[string]time.Time{}}
	for name := range raw {
		if _, ok := c.arg(name); !ok {
			return in, fmt.Errorf("%s: unknown argument %q", c.Path, name)
		}
	}
	if c.NeedsConfig {
		if _, err := env.Config(); err != nil {
			return in, err
		}
	}
	for _, a := range c.Args {
		vals := raw[a.Name]
		if !a.Required && len(vals) == 1 && vals[0] == "" {
			vals = nil
		}
		switch {
		case len(vals) == 0:
			if a.Required && !a.Secret {
				return in, missing(c, a)
			}
			continue
		case len(vals) > 1 && !a.Repeated:
			return in, fmt.Errorf("%s: %s given %d times", c.Path, a.Name, len(vals))
		}
		for _, v := range vals {
			if err := in.check(env, a, v); err != nil {
				return in, err
			}
		}
		in.values[a.Name] = vals
	}
	if c.Check != nil {
		if err := c.Check(env, in); err != nil {
			return in, err
		}
	}
	return in, nil
}

// missing is the error for a required argument that was not given.
func missing(c *Command, a Arg) error {
	return fmt.Errorf("%s: missing %s (%s)", c.Path, a.Name, a.Label)
}

// check checks one value by its argument's Kind. The errors are the ones
// the operations themselves give (ParseAccount's), so that every front end
// says the same.
func (in Input) check(env *Env, a Arg, v string) error {
	switch a.Kind {
	case Account:
		cfg, err := env.Config()
		if err != nil {
			return err
		}
		j, err := Users{Config: cfg}.ParseAccount(v)
		if err != nil {
			return err
		}
		in.jids[a.Name] = j
	case JID:
		j, err := bareJID(v)
		if err != nil {
			return err
		}
		in.jids[a.Name] = j
	case Domain:
		d, err := parseDomain(v)
		if err != nil {
			return err
		}
		in.jids[a.Name] = d
	case Room:
		j, err := parseRoom(v)
		if err != nil {
			return err
		}
		in.jids[a.Name] = j
	case Int:
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("invalid %s %q: want a whole number", a.Name, v)
		}
	case Bool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid %s %q: want true or false", a.Name, v)
		}
	case Time:
		t, err := parseTime(v)
		if err != nil {
			return fmt.Errorf("invalid %s %q: want a date (2024-05-01) or a date and time with its zone (2024-05-01T12:00:00Z, XEP-0082)", a.Name, v)
		}
		if t.Before(time.Unix(0, 0)) {
			// Nothing xmppd keeps is older; and the zero time, year 1,
			// would read as "not given", which for purge means everything.
			return fmt.Errorf("invalid %s %q: want a time from 1970 on", a.Name, v)
		}
		in.times[a.Name] = t
	}
	return nil
}

// parseTime parses an XEP-0082 DateTime, which is RFC 3339 with optional
// fractions of a second, or a date alone, meaning its midnight UTC
// (XEP-0082 dates have no zone).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

// parseDomain parses a domain name (a JID with neither local part nor
// resource).
func parseDomain(s string) (jid.JID, error) {
	d, err := jid.Parse(s)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("invalid domain %q", s)
	}
	return d, nil
}

// Exec runs the command on parsed input, once the required secrets are
// there: the one way every front end runs an operation.
func (c *Command) Exec(ctx context.Context, env *Env, in Input) (Result, error) {
	if in.cmd != c {
		return Result{}, fmt.Errorf("%s: input parsed for another command", c.Path)
	}
	for _, a := range c.Args {
		if a.Secret && a.Required && len(in.values[a.Name]) == 0 {
			return Result{}, missing(c, a)
		}
	}
	return c.Run(ctx, env, in)
}
