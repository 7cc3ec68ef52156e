package loadtest

import "testing"

// TestSCRAM replays the exchange of RFC 5802 §5 (SCRAM-SHA-1, user
// "user", password "pencil"), and checks that a wrong server signature and
// a server nonce that does not extend the client's are refused.
func TestSCRAM(t *testing.T) {
	const serverFirst = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
	start := func() *scram {
		s, err := newSCRAM("SCRAM-SHA-1", "user", "pencil")
		if err != nil {
			t.Fatal(err)
		}
		s.nonce = "fyko+d2lbbFgONRv9qkxdawL"
		if got := string(s.first()); got != "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL" {
			t.Fatalf("client first %q", got)
		}
		return s
	}
	for range 2 { // the second time from the cache of salted passwords
		s := start()
		final, err := s.final([]byte(serverFirst))
		if err != nil {
			t.Fatal(err)
		}
		if want := "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="; string(final) != want {
			t.Fatalf("client final %q, want %q", final, want)
		}
		if err := s.verify([]byte("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")); err != nil {
			t.Errorf("the RFC's server signature: %v", err)
		}
		if err := s.verify([]byte("v=AAF9pqV8S7suAoZWja4dJRkFsKQ=")); err == nil {
			t.Error("a wrong server signature passed")
		}
	}
	s := start()
	if _, err := s.final([]byte("r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096")); err == nil {
		t.Error("a server nonce not extending the client's passed")
	}
}
