package query

import (
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestFinCount: <fin/> carries the count the store gave, and none when the
// store did not count (more matches than the query's CountLimit).
func TestFinCount(t *testing.T) {
	msgs := []storage.ArchivedMessage{{ID: "a"}, {ID: "b"}}
	for _, tt := range []struct {
		name  string
		page  storage.ArchivePage
		count string // "" for no <count/>
	}{
		{"counted", storage.ArchivePage{Messages: msgs, Count: 7}, "7"},
		{"empty", storage.ArchivePage{Complete: true}, "0"},
		{"not counted", storage.ArchivePage{Messages: msgs, Count: -1}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set := fin(tt.page).Child(NSRSM, "set")
			c := set.Child(NSRSM, "count")
			switch {
			case tt.count == "" && c != nil:
				t.Errorf("count %q, want none", c.Text())
			case tt.count != "" && (c == nil || c.Text() != tt.count):
				t.Errorf("count %v, want %s", c, tt.count)
			}
			if len(tt.page.Messages) > 0 && (set.Child(NSRSM, "first").Text() != "a" || set.Child(NSRSM, "last").Text() != "b") {
				t.Errorf("first/last wrong: %v", set)
			}
		})
	}
}
