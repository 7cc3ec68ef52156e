package c2s

import (
	"errors"
	"math"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// TestAckedCount checks the ack arithmetic modulo 2^32 (XEP-0198 §4): h
// wraps around after 2^32-1, and an h past what was sent is refused, also
// across the wrap.
func TestAckedCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		acked, h uint32
		unacked  int
		want     int
		ok       bool
	}{
		{"nothing new", 5, 5, 3, 0, true},
		{"some", 5, 7, 3, 2, true},
		{"all", 5, 8, 3, 3, true},
		{"too many", 5, 9, 3, 0, false},
		{"behind", 5, 4, 3, 0, false},
		{"wrap to zero", math.MaxUint32, 0, 1, 1, true},
		{"across the wrap", math.MaxUint32 - 1, 2, 4, 4, true},
		{"too many across the wrap", math.MaxUint32 - 1, 3, 4, 0, false},
		{"none sent", 0, 1, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ackedCount(tc.acked, tc.h, tc.unacked)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ackedCount(%d, %d, %d) = %d, %v; want %d, %v", tc.acked, tc.h, tc.unacked, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestSMStateWrap runs the counters across 2^32: the writer's count and
// the client's h both wrap, and acks keep working.
func TestSMStateWrap(t *testing.T) {
	sm := &smState{active: true, sent: math.MaxUint32 - 1, acked: math.MaxUint32 - 1}
	for range 4 {
		st, _ := router.NewStanza(router.NewElement("", "message"))
		sm.wrote(st, 10)
	}
	if sm.sent != 2 {
		t.Fatalf("sent = %d after wrapping, want 2", sm.sent)
	}
	if err := sm.ack(0); err != nil || len(sm.unacked) != 2 || sm.unackedBytes != 20 {
		t.Fatalf("ack 0: %v, %d unacked (%d bytes), want 2 (20)", err, len(sm.unacked), sm.unackedBytes)
	}
	var high handledTooHigh
	if err := sm.ack(3); !errors.As(err, &high) || high.sent != 2 {
		t.Fatalf("ack 3 of 2: %v, want handled-count-too-high", err)
	}
	if err := sm.ack(2); err != nil || sm.unacked != nil || sm.unackedBytes != 0 {
		t.Fatalf("ack 2: %v, %d unacked, want none", err, len(sm.unacked))
	}
}

// TestParseSMCommand checks the stream management elements a client sends.
func TestParseSMCommand(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want smCommand
		err  bool
	}{
		{`<enable xmlns="urn:xmpp:sm:3"/>`, smCommand{name: "enable"}, false},
		{`<enable xmlns="urn:xmpp:sm:3" resume="true" max="60"/>`, smCommand{name: "enable", resume: true, max: 60}, false},
		{`<enable xmlns="urn:xmpp:sm:3" resume="1"/>`, smCommand{name: "enable", resume: true}, false},
		{`<enable xmlns="urn:xmpp:sm:3" resume="yes"/>`, smCommand{}, true},
		{`<enable xmlns="urn:xmpp:sm:3" max="-1"/>`, smCommand{}, true},
		{`<r xmlns="urn:xmpp:sm:3"/>`, smCommand{name: "r"}, false},
		{`<a xmlns="urn:xmpp:sm:3" h="4294967295"/>`, smCommand{name: "a", h: math.MaxUint32}, false},
		{`<a xmlns="urn:xmpp:sm:3" h="4294967296"/>`, smCommand{}, true},
		{`<a xmlns="urn:xmpp:sm:3"/>`, smCommand{}, true},
		{`<a xmlns="urn:xmpp:sm:3" h="+1"/>`, smCommand{}, true},
		{`<resume xmlns="urn:xmpp:sm:3" previd="abc" h="7"/>`, smCommand{name: "resume", previd: "abc", h: 7}, false},
		{`<resume xmlns="urn:xmpp:sm:3" h="7"/>`, smCommand{}, true},
		{`<resumed xmlns="urn:xmpp:sm:3" previd="abc" h="7"/>`, smCommand{}, true},
		{`<a xmlns="urn:xmpp:sm:2" h="1"/>`, smCommand{}, true},
	} {
		t.Run(tc.xml, func(t *testing.T) {
			e, err := router.ParseElement([]byte(tc.xml), router.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseSMCommand(e)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzParseSMCommand feeds arbitrary elements to the stream management
// parser: it must never panic, and what it accepts must read back the same
// from the attributes it came from.
func FuzzParseSMCommand(f *testing.F) {
	for _, s := range []string{
		`<enable xmlns="urn:xmpp:sm:3" resume="true" max="300"/>`,
		`<r xmlns="urn:xmpp:sm:3"/>`,
		`<a xmlns="urn:xmpp:sm:3" h="0"/>`,
		`<a xmlns="urn:xmpp:sm:3" h="4294967295"/>`,
		`<resume xmlns="urn:xmpp:sm:3" previd="AAAA" h="12"/>`,
		`<resume xmlns="urn:xmpp:sm:3" previd="" h="-1"/>`,
		`<a xmlns="urn:xmpp:sm:3" h="99999999999999999999"/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := router.ParseElement(b, router.NSClient)
		if err != nil {
			return
		}
		cmd, err := parseSMCommand(e)
		if err != nil {
			return
		}
		if cmd.name != e.Name.Local || e.Name.Space != nsSM {
			t.Fatalf("parsed %+v from %s", cmd, e)
		}
		if cmd.name == "a" || cmd.name == "resume" {
			if h, err := parseH(e.Get("h")); err != nil || h != cmd.h {
				t.Fatalf("h %d from %q", cmd.h, e.Get("h"))
			}
		}
		if cmd.name == "resume" && cmd.previd != e.Get("previd") {
			t.Fatalf("previd %q from %q", cmd.previd, e.Get("previd"))
		}
	})
}
