package muc

import (
	"strings"
	"testing"
	"time"
)

// TestTokenBucket checks an occupant's bucket against a clock the test
// moves: the burst at once, then one token per 1/rate seconds, never more
// than the burst.
func TestTokenBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := &occupant{tokens: 2, filled: t0}
	for _, c := range []struct {
		after time.Duration
		want  bool
	}{
		{0, true}, {0, true}, {0, false},
		{500 * time.Millisecond, false}, // half a token at 1/s
		{500 * time.Millisecond, true},  // the whole one
		{0, false},
		{time.Hour, true}, {time.Hour, true}, // refilled to the burst only
		{time.Hour, true}, {time.Hour, true},
	} {
		t0 = t0.Add(c.after)
		if got := o.take(t0, 1, 2); got != c.want {
			t.Fatalf("take after %v = %v, want %v (tokens %v)", c.after, got, c.want, o.tokens)
		}
	}
	o = &occupant{tokens: 2, filled: t0}
	o.take(t0.Add(time.Hour), 1, 2)
	if o.tokens > 1 {
		t.Errorf("bucket above its burst: %v", o.tokens)
	}
}

// TestOptionsValidate checks that bad options are refused, naming the key.
func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"defaults", func(*Options) {}, ""},
		{"empty prefix", func(o *Options) { o.Prefix = "" }, "prefix"},
		{"bad prefix", func(o *Options) { o.Prefix = "a b" }, "prefix"},
		{"creators", func(o *Options) { o.Creators = "nobody" }, "creators"},
		{"rate", func(o *Options) { o.MessageRate = 0 }, "message_rate"},
		{"burst", func(o *Options) { o.MessageBurst = -1 }, "message_burst"},
		{"occupants", func(o *Options) { o.MaxOccupants = 0 }, "max_occupants"},
		{"default history", func(o *Options) { o.DefaultHistory = o.MaxHistory + 1 }, "default_history"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := DefaultOptions()
			c.change(&o)
			err := o.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate() = %v, want an error about %s", err, c.want)
			}
		})
	}
}
