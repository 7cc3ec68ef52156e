package c2s_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // storedRows reads the database itself

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/storage"
)

const (
	nsFAST = "urn:xmpp:fast:0"
	htNone = "HT-SHA-256-NONE"
	htEndp = "HT-SHA-256-ENDP"
	htExpr = "HT-SHA-256-EXPR"
)

// requestToken is the inline request for a FAST token.
const requestToken = `<request-token xmlns="urn:xmpp:fast:0" mechanism="HT-SHA-256-NONE"/>`

// requestTokenFor is the inline request for a FAST token of mech.
func requestTokenFor(mech string) string {
	return `<request-token xmlns="urn:xmpp:fast:0" mechanism="` + mech + `"/>`
}

// fastToken returns the token of a <success/>, "" if none, and checks its
// expiry.
func fastToken(t testing.TB, succ *router.Element, ttl time.Duration) string {
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

// fastLogin logs in with a FAST token and HT-SHA-256-NONE and returns the
// result (a failure too); extra goes in <authenticate/>.
func fastLogin(t *testing.T, s *testserver.Server, local, agent, token, extra string) *testserver.SASL2Result {
	t.Helper()
	return fastLoginWith(t, s, local, testserver.SASL2{Mechanism: htNone, Secret: token, AgentID: agent, Inline: extra})
}

// fastLoginWith logs in as o says on a new connection and returns the
// result (a failure too); the client checks the server's HT answer.
func fastLoginWith(t *testing.T, s *testserver.Server, local string, o testserver.SASL2) *testserver.SASL2Result {
	t.Helper()
	c := dialSASL2(t, s)
	res, err := c.AuthSASL2(local, o)
	if err != nil {
		t.Fatalf("fast login: %v", err)
	}
	c.Conn.Close()
	return res
}

// passwordToken logs in with SCRAM and asks for a FAST token for agent.
func passwordToken(t *testing.T, s *testserver.Server, local, agent string) string {
	t.Helper()
	return passwordTokenFor(t, s, local, agent, htNone)
}

// passwordTokenFor logs in with SCRAM and asks for a FAST token of mech
// for agent.
func passwordTokenFor(t testing.TB, s *testserver.Server, local, agent, mech string) string {
	t.Helper()
	c := dialSASL2(t, s)
	res := mustSASL2(t, c, local, testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agent, Inline: requestTokenFor(mech)})
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
	if fast == nil || fast.Get("tls-0rtt") != "" {
		t.Fatalf("FAST feature %s, want one without 0-RTT", fast)
	}
	// The channel-binding mechanisms where XEP-0440 lists their types
	// (both, on TLS 1.3 with an ECDSA certificate), strongest first.
	var want, got []string
	types := bindingTypes(c.Features)
	if slices.Contains(types, "tls-exporter") {
		want = append(want, htExpr)
	}
	if slices.Contains(types, "tls-server-end-point") {
		want = append(want, htEndp)
	}
	want = append(want, htNone)
	for _, m := range fast.Elements() {
		got = append(got, m.Text())
	}
	if !slices.Equal(got, want) || len(want) != 3 {
		t.Fatalf("FAST mechanisms %v (binding types %v), want %v and all three", got, types, want)
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

	expired := s.IssueFastToken(storage.FastToken{Domain: "localhost", Local: "alice", Agent: agentB,
		Mechanism: htNone, Expires: time.Now().Add(-time.Minute)})

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
		old := s.IssueFastToken(storage.FastToken{Domain: "localhost", Local: "alice", Agent: agentB,
			Mechanism: htNone, Expires: time.Now().Add(time.Hour)})
		res := fastLogin(t, s, "alice", agentB, old, "")
		if res.Condition != "" || fastToken(t, res.Success, 21*24*time.Hour) == "" {
			t.Errorf("login with a token due for rotation: %+v, want a new token", res)
		}
	})
}

// agentFor is a user-agent id of its own for each FAST mechanism, so that
// a token of one does not supersede another's.
var agentFor = map[string]string{
	htNone: "0b7e4a52-3c1d-4e6f-8a90-1b2c3d4e5f60",
	htEndp: "1c8f5b63-4d2e-4f70-9ba1-2c3d4e5f6071",
	htExpr: "2d906c74-5e3f-4081-acb2-3d4e5f607182",
}

// TestFASTMechanisms logs in with a token of each HT mechanism
// (draft-schmaus-kitten-sasl-ht), the client hashing the channel binding
// data it computes itself from its side of the TLS connection and
// checking the server's answer; and checks the refusals XEP-0484 asks
// for: a proof over another connection's channel binding data (a man in
// the middle's), and a token used with a mechanism it was not issued for
// (§"Client authenticates using FAST": "MUST fail even if the token would
// otherwise be accepted").
func TestFASTMechanisms(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.LoginFailures = 1000 })
	s.AddUser("alice", "pw")
	tokens := map[string]string{}
	for _, mech := range []string{htNone, htEndp, htExpr} {
		tokens[mech] = passwordTokenFor(t, s, "alice", agentFor[mech], mech)
	}
	other := make([]byte, 32) // not this connection's binding data
	for _, tc := range []struct {
		name     string
		mech     string // the mechanism logged in with
		issuedTo string // the mechanism the token is of
		cbData   []byte // instead of the connection's
		cond     string
	}{
		{name: "none", mech: htNone, issuedTo: htNone},
		{name: "endp", mech: htEndp, issuedTo: htEndp},
		{name: "expr", mech: htExpr, issuedTo: htExpr},
		{name: "endp over other binding", mech: htEndp, issuedTo: htEndp, cbData: other, cond: "not-authorized"},
		{name: "expr over other binding", mech: htExpr, issuedTo: htExpr, cbData: other, cond: "not-authorized"},
		{name: "expr with no binding data", mech: htExpr, issuedTo: htExpr, cbData: []byte{}, cond: "not-authorized"},
		{name: "none token with expr", mech: htExpr, issuedTo: htNone, cond: "not-authorized"},
		{name: "expr token with none", mech: htNone, issuedTo: htExpr, cond: "not-authorized"},
		{name: "endp token with expr", mech: htExpr, issuedTo: htEndp, cond: "not-authorized"},
		{name: "expr token with endp", mech: htEndp, issuedTo: htExpr, cond: "not-authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fastLoginWith(t, s, "alice", testserver.SASL2{Mechanism: tc.mech, Secret: tokens[tc.issuedTo],
				AgentID: agentFor[tc.issuedTo], HTBindingData: tc.cbData, Inline: `<bind xmlns="urn:xmpp:bind:0"/>`})
			if res.Condition != tc.cond {
				t.Fatalf("condition %q (%s), want %q", res.Condition, res.Text, tc.cond)
			}
			if tc.cond == "" && res.Success.Child(nsBind2, "bound") == nil {
				t.Errorf("success %s, want <bound/>", res.Success)
			}
		})
	}
	t.Run("request for a mechanism not offered", func(t *testing.T) {
		c := dialSASL2(t, s)
		res, err := c.AuthSASL2("alice", testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agentA,
			Inline: requestTokenFor("HT-SHA-256-UNIQ")})
		if err != nil || res.Condition != "invalid-mechanism" {
			t.Errorf("token request for HT-SHA-256-UNIQ: %+v %v, want invalid-mechanism", res, err)
		}
		c.Conn.Close()
	})
}

// TestFASTStoredForm checks that the database alone lets nobody log in
// with a FAST token: no column of the stored rows holds a token, its
// bytes, its HT-SHA-256-NONE proof or answer or their SHA-256 (what
// would check a proof without the server's key); and a server on the
// same database with another key refuses every token, while one
// configured with the first server's key (auth.fast_secret, as nodes
// sharing a database are) accepts them.
func TestFASTStoredForm(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	tokens := map[string]string{}
	for _, mech := range []string{htNone, htEndp, htExpr} {
		tokens[mech] = passwordTokenFor(t, s, "alice", agentFor[mech], mech)
	}
	key, err := os.ReadFile(filepath.Join(s.Config.DataDir, server.FastSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	dbPath := s.Config.Storage.SQLite
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	rows := storedRows(t, dbPath, "fast_tokens")
	if len(rows) != 3 {
		t.Fatalf("%d stored tokens, want 3", len(rows))
	}
	for mech, tok := range tokens {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) < 32 {
			t.Fatalf("token %q is not base64url of an id and a MAC: %v", tok, err)
		}
		proof := testserver.HTProof(tok, "Initiator", nil)
		answer := testserver.HTProof(tok, "Responder", nil)
		proofSum, answerSum := sha256.Sum256(proof), sha256.Sum256(answer)
		for name, secret := range map[string][]byte{
			"token": []byte(tok), "token bytes": raw, "token MAC": raw[len(raw)-32:],
			"proof": proof, "answer": answer, "proof hash": proofSum[:], "answer hash": answerSum[:],
		} {
			for _, row := range rows {
				if bytes.Contains(row, secret) {
					t.Errorf("the stored row %q holds the %s token's %s", row, mech, name)
				}
			}
		}
	}

	for _, tc := range []struct {
		name   string
		secret string // auth.fast_secret of the server on the copy
		cond   string
	}{
		{"another key", "", "not-authorized"},
		{"the same key", strings.TrimSpace(string(key)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again := testserver.Start(t, func(c *config.Config) {
				c.Storage.SQLite = dbPath
				c.Auth.FastSecret = tc.secret
			})
			for mech, tok := range tokens {
				res := fastLoginWith(t, again, "alice", testserver.SASL2{Mechanism: mech, Secret: tok, AgentID: agentFor[mech]})
				if res.Condition != tc.cond {
					t.Errorf("%s token: condition %q (%s), want %q", mech, res.Condition, res.Text, tc.cond)
				}
			}
			if err := again.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// storedRows returns every row of table in the SQLite database at path,
// each as its columns' values one after another.
func storedRows(t *testing.T, path, table string) [][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM ` + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var row []byte
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				row = append(row, b...)
			} else {
				row = fmt.Appendf(row, "%v", v)
			}
			row = append(row, 0)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
