package router_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// resources returns the full JIDs of sessions, sorted.
func resources(sessions []router.Session) []string {
	var out []string
	for _, s := range sessions {
		out = append(out, s.JID().String())
	}
	slices.Sort(out)
	return out
}

func TestRegistryBind(t *testing.T) {
	reg := router.NewLocalRegistry()
	a1 := newSession("alice@localhost/one", true, 0)
	a2 := newSession("alice@localhost/two", true, 0)
	b1 := newSession("bob@localhost/one", true, 0)
	for _, s := range []*fakeSession{a1, a2, b1} {
		replaced, err := reg.Bind(s, 0)
		if err != nil || replaced != nil {
			t.Fatalf("Bind(%s) = %v, %v; want nil, nil", s.jid, replaced, err)
		}
	}
	if got := reg.Count(); got != 3 {
		t.Errorf("Count() = %d, want 3", got)
	}
	lookups := []struct {
		full string
		want router.Session
	}{
		{"alice@localhost/one", a1},
		{"alice@localhost/two", a2},
		{"bob@localhost/one", b1},
		{"alice@localhost/three", nil},
		{"carol@localhost/one", nil},
		{"alice@localhost", nil}, // a bare JID names no resource
	}
	for _, l := range lookups {
		if got := reg.Lookup(jid.MustParse(l.full)); got != l.want {
			t.Errorf("Lookup(%s) = %v, want %v", l.full, got, l.want)
		}
	}
	if got, want := resources(reg.Sessions(jid.MustParse("alice@localhost"))), []string{"alice@localhost/one", "alice@localhost/two"}; !slices.Equal(got, want) {
		t.Errorf("Sessions(alice) = %q, want %q", got, want)
	}
	// A full JID is taken as its bare JID.
	if got := resources(reg.Sessions(jid.MustParse("alice@localhost/whatever"))); len(got) != 2 {
		t.Errorf("Sessions(alice/whatever) = %q, want both of alice's", got)
	}
	if got := reg.Sessions(jid.MustParse("carol@localhost")); len(got) != 0 {
		t.Errorf("Sessions(carol) = %v, want none", got)
	}

	// Sessions is a snapshot: changing it changes nothing.
	snap := reg.Sessions(jid.MustParse("alice@localhost"))
	snap[0] = b1
	if got := resources(reg.Sessions(jid.MustParse("alice@localhost"))); !slices.Equal(got, []string{"alice@localhost/one", "alice@localhost/two"}) {
		t.Errorf("changing a snapshot changed the registry: %q", got)
	}
}

func TestRegistryReplace(t *testing.T) {
	reg := router.NewLocalRegistry()
	old := newSession("alice@localhost/r", true, 0)
	other := newSession("alice@localhost/s", true, 0)
	for _, s := range []*fakeSession{old, other} {
		if _, err := reg.Bind(s, 2); err != nil {
			t.Fatal(err)
		}
	}
	// At the limit, a session for a bound resource still replaces it.
	neu := newSession("alice@localhost/r", true, 0)
	replaced, err := reg.Bind(neu, 2)
	if err != nil {
		t.Fatalf("replacing at the session limit: %v", err)
	}
	if replaced != old {
		t.Errorf("Bind returned %v as replaced, want the old session", replaced)
	}
	if got := reg.Lookup(neu.jid); got != neu {
		t.Errorf("Lookup after replace = %v, want the new session", got)
	}
	if got := reg.Count(); got != 2 {
		t.Errorf("Count() = %d after a replace, want 2", got)
	}
	// The replaced session ending must not unbind its successor.
	reg.Unbind(old)
	if got := reg.Lookup(neu.jid); got != neu {
		t.Errorf("Unbind of the replaced session removed the new one")
	}
	if got := reg.Count(); got != 2 {
		t.Errorf("Count() = %d after unbinding a replaced session, want 2", got)
	}
}

func TestRegistryMaxSessions(t *testing.T) {
	tests := []struct {
		max      int
		sessions int
		wantErrs int
	}{
		{max: 0, sessions: 20, wantErrs: 0}, // no limit
		{max: 1, sessions: 3, wantErrs: 2},
		{max: 3, sessions: 3, wantErrs: 0},
		{max: 3, sessions: 5, wantErrs: 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d,n=%d", tt.max, tt.sessions), func(t *testing.T) {
			reg := router.NewLocalRegistry()
			errs := 0
			for i := range tt.sessions {
				_, err := reg.Bind(newSession(fmt.Sprintf("alice@localhost/r%d", i), true, 0), tt.max)
				if errors.Is(err, router.ErrTooManySessions) {
					errs++
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if errs != tt.wantErrs {
				t.Errorf("%d binds refused, want %d", errs, tt.wantErrs)
			}
			if got, want := reg.Count(), tt.sessions-tt.wantErrs; got != want {
				t.Errorf("Count() = %d, want %d", got, want)
			}
			// The limit is per account.
			if _, err := reg.Bind(newSession("bob@localhost/r", true, 0), tt.max); err != nil {
				t.Errorf("another account: %v", err)
			}
		})
	}
}

func TestRegistryUnbind(t *testing.T) {
	reg := router.NewLocalRegistry()
	a1 := newSession("alice@localhost/one", true, 0)
	a2 := newSession("alice@localhost/two", true, 0)
	for _, s := range []*fakeSession{a1, a2} {
		if _, err := reg.Bind(s, 0); err != nil {
			t.Fatal(err)
		}
	}
	reg.Unbind(a1)
	reg.Unbind(a1) // twice is harmless
	if got := reg.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
	if reg.Lookup(a1.jid) != nil {
		t.Error("unbound session still found")
	}
	reg.Unbind(a2)
	if got := reg.Count(); got != 0 {
		t.Errorf("Count() = %d, want 0", got)
	}
	if got := reg.Sessions(jid.MustParse("alice@localhost")); len(got) != 0 {
		t.Errorf("Sessions after unbinding all = %v", got)
	}
	// Never bound, and of an account that is not there.
	reg.Unbind(newSession("carol@localhost/x", true, 0))
	if got := reg.Count(); got != 0 {
		t.Errorf("Count() = %d after unbinding an unknown session", got)
	}
	// The account can bind again.
	if _, err := reg.Bind(a1, 1); err != nil {
		t.Fatal(err)
	}
	if reg.Lookup(a1.jid) != a1 || reg.Count() != 1 {
		t.Error("bind after the account was emptied did not take")
	}
}

// TestRegistryConcurrent binds and unbinds from many goroutines on a few
// shared accounts, with and without shared resource names and a session
// limit, for the race detector and the registry's bookkeeping.
func TestRegistryConcurrent(t *testing.T) {
	tests := []struct {
		name      string
		shareRes  bool // all goroutines use the same resource names
		max       int
		accounts  int
		perWorker int
	}{
		{name: "distinct resources", accounts: 3, perWorker: 300},
		{name: "shared resources", shareRes: true, accounts: 2, perWorker: 300},
		{name: "session limit", max: 2, accounts: 1, perWorker: 300},
	}
	const workers = 8
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := router.NewLocalRegistry()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range tt.perWorker {
						bare := fmt.Sprintf("u%d@localhost", (w+i)%tt.accounts)
						res := fmt.Sprintf("w%d-%d", w, i)
						if tt.shareRes {
							res = fmt.Sprintf("r%d", i%3)
						}
						s := newSession(bare+"/"+res, true, 0)
						_, err := reg.Bind(s, tt.max)
						if errors.Is(err, router.ErrTooManySessions) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						// Another worker may have replaced s and gone already
						// when resources are shared.
						if n := len(reg.Sessions(s.jid)); (n == 0 && !tt.shareRes) || (tt.max > 0 && n > tt.max) {
							t.Errorf("%s has %d sessions (max %d)", bare, n, tt.max)
						}
						if !tt.shareRes && reg.Lookup(s.jid) != router.Session(s) {
							t.Errorf("Lookup(%s) did not find the session just bound", s.jid)
						}
						_ = reg.Count()
						reg.Unbind(s)
						if !tt.shareRes && reg.Lookup(s.jid) != nil {
							t.Errorf("Lookup(%s) found the session just unbound", s.jid)
						}
					}
				}()
			}
			wg.Wait()
			if got := reg.Count(); got != 0 {
				t.Errorf("Count() = %d after every session was unbound", got)
			}
			for a := range tt.accounts {
				if got := reg.Sessions(jid.MustParse(fmt.Sprintf("u%d@localhost", a))); len(got) != 0 {
					t.Errorf("u%d still has sessions %q", a, resources(got))
				}
			}
		})
	}
}
