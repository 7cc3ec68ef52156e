package disco

import "testing"

// TestNearestDomain checks which served domain's disco#items lists a
// service: the nearest parent only, so a nested service is listed once.
func TestNearestDomain(t *testing.T) {
	domains := []string{"example.org", "chat.example.org"}
	tests := []struct{ svc, want string }{
		{"conference.example.org", "example.org"},
		{"conference.chat.example.org", "chat.example.org"},
		{"bot.other.net", ""},
		{"notexample.org", ""},
	}
	for _, tt := range tests {
		if got := nearestDomain(tt.svc, domains); got != tt.want {
			t.Errorf("nearestDomain(%q) = %q, want %q", tt.svc, got, tt.want)
		}
	}
}
