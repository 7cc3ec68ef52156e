package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Period is a length of time that may be long, such as a retention time:
// a Go duration ("12h", "90m") or a whole number of days, weeks or years
// ("365d", "52w", "1y", a year being 365 days), which time.Duration cannot
// parse. "m" is minutes, as in Go, not months.
type Period time.Duration

// The units a Period may be written in beyond Go's.
const (
	day  = 24 * time.Hour
	week = 7 * day
	year = 365 * day
)

var periodType = reflect.TypeOf(Period(0))

// ParsePeriod reads a Period as the configuration writes it; "0" is zero.
func ParsePeriod(s string) (Period, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New(`empty period (write e.g. "365d", "52w", "1y" or "12h")`)
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", day}, {"w", week}, {"y", year}} {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			break // "1.5d", "d": not a whole number of the unit
		}
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		if n > int64(time.Duration(1<<63-1)/u.unit) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		return Period(time.Duration(n) * u.unit), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a period (write a whole number of days, weeks or years like "365d", "52w", "1y", or a duration like "12h")`, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Period(d), nil
}

// Duration returns p as a time.Duration.
func (p Period) Duration() time.Duration { return time.Duration(p) }

// String writes p the way ParsePeriod reads it: in the largest unit of
// days, weeks and years that divides it, else as a Go duration.
func (p Period) String() string {
	d := time.Duration(p)
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"y", year}, {"w", week}, {"d", day}} {
		if d != 0 && d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.suffix
		}
	}
	return d.String()
}

// UnmarshalYAML reads a Period from a YAML scalar. Load checks the value
// before (walkPeriod), so that its error names the key; this error is for
// YAML decoded elsewhere.
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a period must be a scalar like \"365d\"", n.Line)}}
	}
	v, err := ParsePeriod(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*p = v
	return nil
}

// MarshalYAML writes a Period as String does, so that it reads back.
func (p Period) MarshalYAML() (any, error) { return p.String(), nil }

// walkPeriod checks the value of the Period setting at path, so that a bad
// one is reported with its key and line, like the validation errors.
func (f *file) walkPeriod(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		f.fail(n.Line, "%s: a period must be a scalar like \"365d\"", path)
		return
	}
	if _, err := ParsePeriod(n.Value); err != nil {
		f.fail(n.Line, "%s: %v", path, err)
	}
}
