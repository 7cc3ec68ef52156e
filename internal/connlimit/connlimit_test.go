package connlimit

import "testing"

func TestBlock(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8::1", "2001:db8::ffff:2", true},
		{"2001:db8::1", "2001:db8:0:1::1", false},
	} {
		if got := Block(tc.a) == Block(tc.b); got != tc.same {
			t.Errorf("Block(%s) == Block(%s) is %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestPerIP(t *testing.T) {
	p := New(2)
	r1, ok1 := p.Acquire("2001:db8::1")
	_, ok2 := p.Acquire("2001:db8::2")
	_, ok3 := p.Acquire("2001:db8::3")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire in one /64: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := p.Acquire("192.0.2.1"); !ok {
		t.Error("another block refused")
	}
	r1()
	r1() // a second release must not count
	if n := p.Held("2001:db8::9"); n != 1 {
		t.Errorf("held after release: %d, want 1", n)
	}
	if _, ok := p.Acquire("2001:db8::4"); !ok {
		t.Error("refused after a release")
	}
	if _, ok := New(0).Acquire("192.0.2.1"); !ok {
		t.Error("an unlimited PerIP refused")
	}
}
