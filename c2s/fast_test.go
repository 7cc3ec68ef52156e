package c2s_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

const (
	nsFAST = "urn:xmpp:fast:0"
	htNone = "HT-SHA-256-NONE"
)

// requestToken is the inline request for a FAST token.
const requestToken = `<request-token xmlns="urn:xmpp:fast:0" mechanism="HT-SHA-256-NONE"/>`

// fastToken returns the token of a <success/>, "" if none, and checks its
// expiry.
func fastToken(t *testing.T, succ *router.Element, ttl time.Duration) string {
	t.Helper()
	tok := succ.Child(nsFAST, "token")
	if tok == nil {
		return ""
	}
	exp, err := time.Parse(time.RFC3339, tok.Get("expiry"))
	if err != nil || exp.Before(time.Now().Add(ttl-time.Hour)) || exp.After(time.Now().Add(ttl+time.Hour)) {
		t.Errorf("token expiry %q (%v), want about %s from now", tok.Get("expiry"), err, ttl)
	}
	if len(tok.Get("token")) < 32 {
		t.Errorf("token %q: too short", tok.Get("token"))
	}
	return tok.Get("token")
}

// fastLogin logs in with a FAST token and returns the result (a failure
// too); extra goes in <authenticate/>.
func fastLogin(t *testing.T, s *testserver.Server, local, agent, token, extra string) *testserver.SASL2Result {
	t.Helper()
	c := dialSASL2(t, s)
	res, err := c.AuthSASL2(local, testserver.SASL2{Mechanism: htNone, Secret: token, AgentID: agent, Inline: extra})
	if err != nil {
		t.Fatalf("fast login: %v", err)
	}
	c.Conn.Close()
	return res
}

// passwordToken logs in with SCRAM and asks for a FAST token for agent.
func passwordToken(t *testing.T, s *testserver.Server, local, agent string) string {
	t.Helper()
	c := dialSASL2(t, s)
	res := mustSASL2(t, c, local, testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agent, Inline: requestToken})
	c.Conn.Close()
	tok := fastToken(t, res.Success, 21*24*time.Hour)
	if tok == "" {
		t.Fatalf("no token in %s", res.Success)
	}
	return tok
}

// TestFAST checks FAST (XEP-0484) end to end: the inline feature, a token
// issued after a password login and used for a login with Bind 2, which
// the client checks the server's HT answer of; and the refusals: another
// installation's, another account's, a wrong, an expired (put in storage
// by the test, from its own HT computation), an invalidated and a
// superseded token, a count that does not grow, no user-agent id; and the
// tokens a password change drops.
func TestFAST(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.LoginFailures = 1000 })
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	ctx := context.Background()

	c := dialSASL2(t, s)
	fast := c.Features.Child(nsSASL2, "authentication").Child(nsSASL2, "inline").Child(nsFAST, "fast")
	if fast == nil || fast.Child(nsFAST, "mechanism") == nil || fast.Child(nsFAST, "mechanism").Text() != htNone || fast.Get("tls-0rtt") != "" {
		t.Fatalf("FAST feature %s, want HT-SHA-256-NONE and no 0-RTT", fast)
	}
	c.Conn.Close()

	token := passwordToken(t, s, "alice", agentA)
	res := fastLogin(t, s, "alice", agentA, token, `<fast xmlns="urn:xmpp:fast:0" count="1"/><bind xmlns="urn:xmpp:bind:0"><tag>F</tag></bind>`)
	if res.Condition != "" || res.Success.Child(nsBind2, "bound") == nil {
		t.Fatalf("FAST login with Bind 2: %+v", res)
	}
	if res.Success.Child(nsFAST, "token") != nil {
		t.Errorf("a fresh token was rotated: %s", res.Success)
	}

	expired := "expired-" + router.NewID() + router.NewID() + router.NewID()
	proof := sha256.Sum256(testserver.HTProof(expired, "Initiator"))
	if err := s.Store.FastTokens().Issue(ctx, storage.FastToken{Domain: "localhost", Local: "alice", Agent: agentB,
		Mechanism: htNone, Verifier: proof[:], Responder: testserver.HTProof(expired, "Responder"),
		Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, local, agent, token, extra, cond string
	}{
		{"other agent", "alice", agentB, token, "", "not-authorized"},
		{"other account", "bob", agentA, token, "", "not-authorized"},
		{"wrong token", "alice", agentA, token + "x", "", "not-authorized"},
		{"expired", "alice", agentB, expired, "", "credentials-expired"},
		{"count replayed", "alice", agentA, token, `<fast xmlns="urn:xmpp:fast:0" count="1"/>`, "not-authorized"},
		{"bad count", "alice", agentA, token, `<fast xmlns="urn:xmpp:fast:0" count="-3"/>`, "malformed-request"},
		{"no agent", "alice", "", token, "", "malformed-request"},
		{"count grows", "alice", agentA, token, `<fast xmlns="urn:xmpp:fast:0" count="2"/>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fastLogin(t, s, tc.local, tc.agent, tc.token, tc.extra)
			if res.Condition != tc.cond {
				t.Errorf("condition %q (%s), want %q", res.Condition, res.Text, tc.cond)
			}
			if tc.cond == "" && authzid(res.Success) != tc.local+"@localhost" {
				t.Errorf("success %s", res.Success)
			}
		})
	}

	t.Run("rotation", func(t *testing.T) {
		// A new token while logged in with the old one: both work until
		// the new one is used; then the old one is refused.
		res := fastLogin(t, s, "alice", agentA, token, requestToken)
		newer := fastToken(t, res.Success, 21*24*time.Hour)
		if res.Condition != "" || newer == "" || newer == token {
			t.Fatalf("token request with FAST: %+v", res)
		}
		if res := fastLogin(t, s, "alice", agentA, token, ""); res.Condition != "" {
			t.Fatalf("old token before the new one is used: %s", res.Condition)
		}
		if res := fastLogin(t, s, "alice", agentA, newer, ""); res.Condition != "" {
			t.Fatalf("new token: %s", res.Condition)
		}
		if res := fastLogin(t, s, "alice", agentA, token, ""); res.Condition != "not-authorized" {
			t.Errorf("old token after the new one was used: %q, want not-authorized", res.Condition)
		}
		token = newer
	})
	t.Run("invalidate", func(t *testing.T) {
		res := fastLogin(t, s, "alice", agentA, token, `<fast xmlns="urn:xmpp:fast:0" invalidate="true"/>`)
		if res.Condition != "" || res.Success.Child(nsFAST, "token") != nil {
			t.Fatalf("invalidating login: %+v", res)
		}
		if res := fastLogin(t, s, "alice", agentA, token, ""); res.Condition != "not-authorized" {
			t.Errorf("invalidated token: %q, want not-authorized", res.Condition)
		}
	})
	t.Run("password change", func(t *testing.T) {
		tok := passwordToken(t, s, "bob", agentA)
		if res := fastLogin(t, s, "bob", agentA, tok, ""); res.Condition != "" {
			t.Fatalf("bob's token: %s", res.Condition)
		}
		u := admin.Users{Config: s.Config, Users: s.Store.Users()}
		if _, err := u.SetPassword(ctx, "bob@localhost", "new"); err != nil {
			t.Fatal(err)
		}
		if res := fastLogin(t, s, "bob", agentA, tok, ""); res.Condition != "not-authorized" {
			t.Errorf("token after a password change: %q, want not-authorized", res.Condition)
		}
	})
	t.Run("rotation when due", func(t *testing.T) {
		// A token with less than half its time left is replaced without
		// being asked for.
		old := "old-" + router.NewID() + router.NewID() + router.NewID()
		proof := sha256.Sum256(testserver.HTProof(old, "Initiator"))
		if err := s.Store.FastTokens().Issue(ctx, storage.FastToken{Domain: "localhost", Local: "alice", Agent: agentB,
			Mechanism: htNone, Verifier: proof[:], Responder: testserver.HTProof(old, "Responder"),
			Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		res := fastLogin(t, s, "alice", agentB, old, "")
		if res.Condition != "" || fastToken(t, res.Success, 21*24*time.Hour) == "" {
			t.Errorf("login with a token due for rotation: %+v, want a new token", res)
		}
	})
}
