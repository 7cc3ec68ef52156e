package c2s_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"hash"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const (
	nsSASL2 = "urn:xmpp:sasl:2"
	nsBind2 = "urn:xmpp:bind:0"
	// agentA and agentB are user-agent ids of two installations.
	agentA = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	agentB = "8e2b1c4a-2f0d-4c53-9a8e-6f1d2c3b4a5e"
)

// sasl2Mechanisms lists the mechanisms of the SASL2 feature.
func sasl2Mechanisms(features *router.Element) []string {
	var out []string
	if a := features.Child(nsSASL2, "authentication"); a != nil {
		for _, e := range a.Elements() {
			if e.Name.Local == "mechanism" {
				out = append(out, strings.TrimSpace(e.Text()))
			}
		}
	}
	return out
}

// dialSASL2 connects and negotiates STARTTLS; the connection then stands
// before authentication, with SASL and SASL2 offered.
func dialSASL2(t testing.TB, s *testserver.Server) *testserver.Raw {
	t.Helper()
	c, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustSASL2 authenticates and fails t unless it succeeds.
func mustSASL2(t testing.TB, c *testserver.Raw, local string, o testserver.SASL2) *testserver.SASL2Result {
	t.Helper()
	res, err := c.AuthSASL2(local, o)
	if err != nil {
		t.Fatalf("sasl2 %s: %v", o.Mechanism, err)
	}
	if res.Condition != "" {
		t.Fatalf("sasl2 %s: failure %s (%s)", o.Mechanism, res.Condition, res.Text)
	}
	return res
}

// authzid is the <authorization-identifier/> of a <success/>.
func authzid(succ *router.Element) string {
	if a := succ.Child(nsSASL2, "authorization-identifier"); a != nil {
		return a.Text()
	}
	return ""
}

// sessionOf returns the c2s session bound to full.
func sessionOf(t *testing.T, s *testserver.Server, full string) *c2s.Session {
	t.Helper()
	j, err := jid.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := s.Router.Sessions().Lookup(j).(*c2s.Session)
	if sess == nil {
		t.Fatalf("no c2s session bound to %s", full)
	}
	return sess
}

// TestSASL2Mechanisms logs in with every mechanism over SASL2 (XEP-0388):
// the feature offers what SASL offers, with the Bind 2 and stream
// management inline features; <success/> carries the bare JID and SCRAM's
// server signature (which the client checks), and is followed at once,
// without a stream restart, by the features of an authenticated stream,
// where resource binding works as after SASL; the user agent is recorded
// on the session. SCRAM's XEP-0474 h= is checked against a computation of
// the test's own from the SASL2 mechanism list. A SASL client on the same
// server still logs in.
func TestSASL2Mechanisms(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	for _, tc := range []struct {
		name   string
		o      testserver.SASL2
		h      func() hash.Hash
		tlsMax uint16
	}{
		{name: "plain", o: testserver.SASL2{Mechanism: "PLAIN"}},
		{name: "scram-sha-1", o: testserver.SASL2{Mechanism: "SCRAM-SHA-1"}, h: sha1.New},
		{name: "scram-sha-256", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256"}, h: sha256.New},
		{name: "scram-sha-256-no-initial", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256", NoInitial: true}, h: sha256.New},
		{name: "scram-sha-256-plus-exporter", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-exporter"}}, h: sha256.New},
		{name: "scram-sha-1-plus-endpoint", o: testserver.SASL2{Mechanism: "SCRAM-SHA-1-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-server-end-point"}}, h: sha1.New},
		{name: "scram-sha-256-plus-unique-tls12", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-unique"}}, h: sha256.New, tlsMax: tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.TLSConfig()
			if tc.tlsMax != 0 {
				cfg.MaxVersion = tc.tlsMax
			}
			c, err := s.DialRawStartTLS(cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := c.Features
			if got, want := sasl2Mechanisms(before), mechanismList(before); !slices.Equal(got, want) {
				t.Fatalf("SASL2 mechanisms %v, SASL's %v", got, want)
			}
			inline := before.Child(nsSASL2, "authentication").Child(nsSASL2, "inline")
			if inline == nil || inline.Child(nsBind2, "bind") == nil || inline.Child(nsSM, "sm") == nil {
				t.Fatalf("inline features %s, want Bind 2 and stream management", inline)
			}
			o := tc.o
			o.Secret, o.AgentID, o.Software, o.Device = "pw", agentA, "TestClient 1.0", "Kiva's Phone"
			res := mustSASL2(t, c, "alice", o)
			if got := authzid(res.Success); got != "alice@localhost" {
				t.Errorf("authorization-identifier %q, want alice@localhost", got)
			}
			if tc.h != nil {
				got, ok := serverFirstAttr(c.LastServerFirst, 'h')
				if want := ssdpHash(before, sasl2Mechanisms(before), tc.h); !ok || got != want {
					t.Errorf("h=%q (present %v) in %q, want %q", got, ok, c.LastServerFirst, want)
				}
			}
			if res.Features.Child(nsSASL2, "authentication") != nil || res.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
				t.Fatalf("features after success: %s, want resource binding and no more authentication", res.Features)
			}
			full, err := c.Bind("desk")
			if err != nil || full != "alice@localhost/desk" {
				t.Fatalf("bind after SASL2: %q %v", full, err)
			}
			ua := sessionOf(t, s, full).UserAgent()
			if want := (c2s.UserAgent{ID: agentA, Software: "TestClient 1.0", Device: "Kiva's Phone"}); ua != want {
				t.Errorf("user agent %+v, want %+v", ua, want)
			}
			c.Conn.Close()
		})
	}
	t.Run("sasl", func(t *testing.T) {
		c := s.LoginRaw("alice", "pw", "old")
		if ua := sessionOf(t, s, "alice@localhost/old").UserAgent(); ua != (c2s.UserAgent{}) {
			t.Errorf("a SASL session has user agent %+v", ua)
		}
		c.Conn.Close()
	})
	t.Run("before-tls", func(t *testing.T) {
		c, err := s.DialRaw()
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.Open(testserver.Header)
		if err != nil {
			t.Fatal(err)
		}
		if f.Child(nsSASL2, "authentication") != nil {
			t.Errorf("SASL2 offered before TLS: %s", f)
		}
	})
}

// TestSASL2Failures checks the <failure/>s of SASL2: the RFC 6120
// condition and a text, the stream still open for another attempt, and
// nothing of the inline requests done (no session bound).
func TestSASL2Failures(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	bind := `<bind xmlns="urn:xmpp:bind:0"><tag>T</tag></bind>`
	for _, tc := range []struct {
		name string
		o    testserver.SASL2
		cond string
	}{
		{"wrong password", testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "wrong", Inline: bind}, "not-authorized"},
		{"wrong plain password", testserver.SASL2{Mechanism: "PLAIN", Secret: "wrong", Inline: bind}, "not-authorized"},
		{"unknown mechanism", testserver.SASL2{Mechanism: "X-UNKNOWN", Secret: "pw", Inline: bind}, "invalid-mechanism"},
		{"plus without binding", testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS", Secret: "pw",
			SCRAM: testserver.SCRAM{Binding: "tls-exporter", BindingData: make([]byte, 32)}, Inline: bind}, "not-authorized"},
		{"other authzid", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", Authzid: "bob@localhost", Inline: bind}, "invalid-authzid"},
		{"agent id not a uuid", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", AgentID: "phone-1", Inline: bind}, "malformed-request"},
		{"bad base64", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", NoInitial: true,
			Inline: `<initial-response>%%%</initial-response>` + bind}, "incorrect-encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSASL2(t, s)
			res, err := c.AuthSASL2("alice", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Condition != tc.cond || res.Text == "" && tc.cond != "not-authorized" {
				t.Errorf("failure %q (%q), want %q with a text", res.Condition, res.Text, tc.cond)
			}
			if n := len(s.Router.Sessions().Sessions(mustJID(t, "alice@localhost"))); n != 0 {
				t.Errorf("%d sessions bound after a failure", n)
			}
			res = mustSASL2(t, c, "alice", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw"})
			if authzid(res.Success) != "alice@localhost" {
				t.Errorf("second attempt: %s", res.Success)
			}
			c.Conn.Close()
		})
	}
	t.Run("abort", func(t *testing.T) {
		c := dialSASL2(t, s)
		if err := c.Send(`<authenticate xmlns="urn:xmpp:sasl:2" mechanism="SCRAM-SHA-256"/>`); err != nil {
			t.Fatal(err)
		}
		if e, err := c.Next(); err != nil || e.Name.Local != "challenge" {
			t.Fatalf("want an empty challenge, got %v %v", e, err)
		}
		if err := c.Send(`<abort xmlns="urn:xmpp:sasl:2"/>`); err != nil {
			t.Fatal(err)
		}
		e, err := c.Next()
		if err != nil || e.Name.Local != "failure" || e.Child("urn:ietf:params:xml:ns:xmpp-sasl", "aborted") == nil {
			t.Fatalf("after abort: %v %v", e, err)
		}
	})
	t.Run("second authenticate", func(t *testing.T) {
		c := dialSASL2(t, s)
		mustSASL2(t, c, "alice", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw"})
		if err := c.Send(`<authenticate xmlns="urn:xmpp:sasl:2" mechanism="PLAIN"/>`); err != nil {
			t.Fatal(err)
		}
		if cond, err := c.WaitStreamError(rawWait); err != nil || cond != "policy-violation" {
			t.Fatalf("second authenticate: stream error %q, %v; want policy-violation", cond, err)
		}
	})
}

// TestSASL2Authzid checks the authorization identity in SASL2: one that is
// not the authenticated account is invalid-authzid, as in SASL, and so is
// one that is not the stream's from (XEP-0388 §"Initiation"), which is
// not checked when either is empty.
func TestSASL2Authzid(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	for _, tc := range []struct {
		name, from, authzid, cond string
	}{
		{name: "no from", authzid: "alice@localhost"},
		{name: "from and authzid", from: "alice@localhost", authzid: "alice@localhost"},
		{name: "full jid from", from: "alice@localhost/phone", authzid: "alice@localhost"},
		{name: "no authzid", from: "bob@localhost"},
		{name: "authzid not the from", from: "bob@localhost", authzid: "alice@localhost", cond: "invalid-authzid"},
		{name: "authzid of another account", from: "alice@localhost", authzid: "bob@localhost", cond: "invalid-authzid"},
		{name: "authzid with a resource", authzid: "alice@localhost/phone", cond: "invalid-authzid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.DialRawTLS(nil)
			if err != nil {
				t.Fatal(err)
			}
			header := testserver.Header
			if tc.from != "" {
				header = strings.Replace(header, " to=", " from='"+tc.from+"' to=", 1)
			}
			if _, err := c.Open(header); err != nil {
				t.Fatal(err)
			}
			res, err := c.AuthSASL2("alice", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", Authzid: tc.authzid,
				Inline: `<bind xmlns="urn:xmpp:bind:0"/>`})
			if err != nil {
				t.Fatal(err)
			}
			if res.Condition != tc.cond {
				t.Errorf("condition %q (%s), want %q", res.Condition, res.Text, tc.cond)
			}
			if tc.cond == "" && res.Success.Child(nsBind2, "bound") == nil {
				t.Errorf("success %s, want <bound/>", res.Success)
			}
			c.Conn.Close()
		})
	}
}

// bind2Login authenticates local with SCRAM over SASL2 with the user agent
// agent and the inline requests inline, and returns the client and the
// <success/>.
func bind2Login(t *testing.T, s *testserver.Server, local, agent, inline string) (*smClient, *router.Element) {
	t.Helper()
	c := dialSASL2(t, s)
	res := mustSASL2(t, c, local, testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agent, Software: "Test", Inline: inline})
	if f := res.Features; f.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") != nil && res.Success.Child(nsBind2, "bound") != nil {
		t.Errorf("resource binding still offered after Bind 2: %s", f)
	}
	return &smClient{Raw: c}, res.Success
}

// TestBind2 checks Bind 2 (XEP-0386) inside SASL2: the inline feature list,
// the resource made of the tag and a suffix that is the same for each
// login of one installation (whose new session then replaces the old
// one) and differs for another, inline stream management and carbons, and
// the full JID in <success/>.
func TestBind2(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	c := dialSASL2(t, s)
	var vars []string
	for _, f := range c.Features.Child(nsSASL2, "authentication").Child(nsSASL2, "inline").Child(nsBind2, "bind").Child(nsBind2, "inline").Elements() {
		vars = append(vars, f.Get("var"))
	}
	for _, want := range []string{nsSM, "urn:xmpp:csi:0", "urn:xmpp:carbons:2"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Bind 2 inline features %v lack %s", vars, want)
		}
	}
	c.Conn.Close()

	resources := map[string]string{}
	for _, tc := range []struct {
		name, agent, tag string
		// sameAs names an earlier case that must have got the same
		// resource; differs one that must not.
		sameAs, differs string
	}{
		{name: "a", agent: agentA, tag: "AwesomeXMPP"},
		{name: "a again", agent: agentA, tag: "AwesomeXMPP", sameAs: "a"},
		{name: "b", agent: agentB, tag: "AwesomeXMPP", differs: "a"},
		{name: "a other tag", agent: agentA, tag: "Other", differs: "a"},
		{name: "no agent", tag: "AwesomeXMPP", differs: "a"},
		{name: "no agent again", tag: "AwesomeXMPP", differs: "no agent"},
		{name: "no tag", agent: agentA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var old <-chan struct{}
			if tc.sameAs != "" {
				old = ended(t, s, resources[tc.sameAs])
			}
			inline := `<bind xmlns="urn:xmpp:bind:0"><tag>` + tc.tag + `</tag></bind>`
			if tc.tag == "" {
				inline = `<bind xmlns="urn:xmpp:bind:0"/>`
			}
			_, succ := bind2Login(t, s, "alice", tc.agent, inline)
			full := authzid(succ)
			j, err := jid.Parse(full)
			if err != nil || j.Bare().String() != "alice@localhost" || succ.Child(nsBind2, "bound") == nil {
				t.Fatalf("success %s, want a full JID of alice and <bound/>", succ)
			}
			res := j.Resourcepart()
			suffix := res
			if tc.tag != "" {
				var ok bool
				if suffix, ok = strings.CutPrefix(res, tc.tag+"/"); !ok {
					t.Errorf("resource %q does not begin with the tag %q and a slash", res, tc.tag)
				}
			}
			if len(suffix) < 8 || strings.Contains(res, tc.agent) && tc.agent != "" {
				t.Errorf("resource %q: want a suffix of 8 or more characters that does not show the agent id", res)
			}
			if tc.sameAs != "" {
				if full != resources[tc.sameAs] {
					t.Errorf("resource %q, want %q as before", full, resources[tc.sameAs])
				}
				wait(t, "the installation's earlier session to end", old)
			}
			if tc.differs != "" && full == resources[tc.differs] {
				t.Errorf("resource %q, the same as case %q's", full, tc.differs)
			}
			sessionOf(t, s, full)
			resources[tc.name] = full
		})
	}

	t.Run("inline features", func(t *testing.T) {
		alice, succ := bind2Login(t, s, "alice", agentB, `<bind xmlns="urn:xmpp:bind:0"><tag>Phone</tag>`+
			`<enable xmlns="urn:xmpp:sm:3" resume="true"/><enable xmlns="urn:xmpp:carbons:2"/><inactive xmlns="urn:xmpp:csi:0"/></bind>`)
		enabled := succ.Child(nsBind2, "bound").Child(nsSM, "enabled")
		if enabled == nil || enabled.Get("resume") != "true" || enabled.Get("id") == "" {
			t.Fatalf("bound %s, want <enabled resume='true' id=…/>", succ.Child(nsBind2, "bound"))
		}
		// Carbons: a message alice sends from another resource comes as
		// a carbon.
		desk := s.Login("alice", "pw", testserver.LoginOptions{Resource: "desk"})
		bob := s.Login("bob", "pw", testserver.LoginOptions{})
		desk.MustSend(t, `<message type="chat" id="c1" to="`+bob.LocalAddr().String()+`"><body>hi</body></message>`)
		alice.until(t, "the carbon", func(e *router.Element) bool {
			return e.Name.Local == "message" && e.Child("urn:xmpp:carbons:2", "sent") != nil
		})
		// Stream management counts from the start: the carbon is one
		// stanza, and the server's h for us is 0.
		alice.send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
		a := alice.until(t, "<a/>", isSM("a"))
		if a.Get("h") != "0" {
			t.Errorf("server's h %q, want 0", a.Get("h"))
		}
		alice.send(t, `<a xmlns="urn:xmpp:sm:3" h="`+strconv.Itoa(int(alice.h))+`"/>`)
		alice.sync(t)
	})

	// CSI inline (XEP-0386 §"Interactions": the session begins in the
	// state asked for): after an inline <inactive/>, a chat state is held
	// as after an <inactive/> sent later (csi_test.go), until a message
	// with a body; with <active/> or nothing it comes at once. The probe
	// is csi_test.go's: what comes before the <a/> was not held. Each
	// case has an account of its own, which nothing of another case's
	// (a stanza routed again when its session ends) reaches.
	for _, tc := range []struct {
		name, csi, user string
		early           []string // before the body
	}{
		{"inline inactive", `<inactive xmlns="urn:xmpp:csi:0"/>`, "csi1", nil},
		{"inline active", `<active xmlns="urn:xmpp:csi:0"/>`, "csi2", []string{"c1"}},
		{"no csi", "", "csi3", []string{"c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.AddUser(tc.user, "pw")
			bob, succ := bind2Login(t, s, tc.user, agentA, `<bind xmlns="urn:xmpp:bind:0"><tag>CSI</tag>`+
				`<enable xmlns="urn:xmpp:sm:3"/>`+tc.csi+`</bind>`)
			full := authzid(succ)
			bob.send(t, `<presence/>`)
			bob.sync(t)
			alice := s.Login("alice", "pw", testserver.LoginOptions{Resource: tc.user})
			alice.MustSend(t, `<message type="chat" id="c1" to="`+full+`"><composing xmlns="http://jabber.org/protocol/chatstates"/><no-store xmlns="urn:xmpp:hints"/></message>`)
			alice.MustSync(t)
			if got := bob.probe(t); !slices.Equal(got, tc.early) {
				t.Errorf("before the body: %v, want %v", got, tc.early)
			}
			alice.MustSend(t, `<message type="chat" id="m1" to="`+full+`"><body>hi</body></message>`)
			alice.MustSync(t)
			want := []string{"m1"}
			if len(tc.early) == 0 {
				want = []string{"c1", "m1"}
			}
			if got := bob.probe(t); !slices.Equal(got, want) {
				t.Errorf("after the body: %v, want %v", got, want)
			}
			bob.send(t, `</stream:stream>`)
			alice.Close()
		})
	}
}

// TestBind2SessionLimit checks a Bind 2 request refused for
// limits.max_sessions_per_user: XEP-0386 defines no bind error and
// XEP-0388 only <success/> and <failure/>, so the whole <authenticate/>
// fails with temporary-auth-failure, RFC 6120's resource-constraint inside
// and a text, and leaves the stream unauthenticated, so that the client
// may authenticate again on it. The installation whose session holds the
// place replaces it, and a place freed is taken.
func TestBind2SessionLimit(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxSessionsPerUser = 1 })
	s.AddUser("alice", "pw")
	bind := `<bind xmlns="urn:xmpp:bind:0"><tag>T</tag></bind>`
	first, succ := bind2Login(t, s, "alice", agentA, bind)
	held := authzid(succ)

	c := dialSASL2(t, s)
	res, err := c.AuthSASL2("alice", testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agentB, Inline: bind})
	if err != nil {
		t.Fatal(err)
	}
	if res.Condition != "temporary-auth-failure" || res.Text == "" ||
		res.Failure.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "resource-constraint") == nil {
		t.Fatalf("over the limit: %+v %s, want temporary-auth-failure with resource-constraint and a text", res, res.Failure)
	}
	if n := len(s.Router.Sessions().Sessions(mustJID(t, "alice@localhost"))); n != 1 {
		t.Errorf("%d sessions after the refusal, want the 1 there was", n)
	}
	// Not authenticated: a new <authenticate/> is no second
	// authentication, and succeeds without a bind.
	again := mustSASL2(t, c, "alice", testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "pw", AgentID: agentB})
	if authzid(again.Success) != "alice@localhost" || again.Success.Child(nsBind2, "bound") != nil {
		t.Errorf("authentication after the refusal: %s", again.Success)
	}
	c.Conn.Close()

	// The same installation gets the same resource, which replaces the
	// session at the limit.
	old := ended(t, s, held)
	second, succ := bind2Login(t, s, "alice", agentA, bind)
	if authzid(succ) != held || succ.Child(nsBind2, "bound") == nil {
		t.Fatalf("the installation again: %s, want %s bound", succ, held)
	}
	wait(t, "the replaced session to end", old)
	first.Conn.Close()

	// A freed place is taken.
	gone := ended(t, s, held)
	second.Send(`</stream:stream>`)
	wait(t, "the session to end", gone)
	if _, succ := bind2Login(t, s, "alice", agentB, bind); succ.Child(nsBind2, "bound") == nil {
		t.Errorf("after the session ended: %s, want <bound/>", succ)
	}
}

// TestSASL2InlineResume: a session bound with Bind 2 and stream management
// loses its connection, and a new connection resumes it inside SASL2
// (<resume/> in <authenticate/>): <success/> carries <resumed/> and the
// same full JID, the Bind 2 request is ignored, and the message sent
// meanwhile arrives once. An unknown previd gets <failed/> in <success/>
// and a new session from the Bind 2 request.
func TestSASL2InlineResume(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	bind := `<bind xmlns="urn:xmpp:bind:0"><tag>Phone</tag><enable xmlns="urn:xmpp:sm:3" resume="true"/></bind>`
	alice, succ := bind2Login(t, s, "alice", agentA, bind)
	full := authzid(succ)
	previd := succ.Child(nsBind2, "bound").Child(nsSM, "enabled").Get("id")
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, full, "m1")
	if got := alice.sync(t); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("messages %v, want m1", got)
	}
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	sendMessages(t, bob, full, "m2")

	for _, tc := range []struct {
		name, previd string
		resumed      bool
	}{
		{"unknown previd", "nope", false},
		{"resume", previd, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inline := `<resume xmlns="urn:xmpp:sm:3" previd="` + tc.previd + `" h="` + strconv.Itoa(int(alice.h)) + `"/>` + bind
			again, succ := bind2Login(t, s, "alice", agentB, inline)
			resumed, failed, bound := succ.Child(nsSM, "resumed"), succ.Child(nsSM, "failed"), succ.Child(nsBind2, "bound")
			if !tc.resumed {
				if failed == nil || bound == nil || authzid(succ) == full {
					t.Fatalf("success %s, want <failed/>, <bound/> and a new resource", succ)
				}
				again.Conn.Close()
				return
			}
			if resumed == nil || bound != nil || authzid(succ) != full || resumed.Get("previd") != previd {
				t.Fatalf("success %s, want <resumed previd=%q/>, no <bound/>, and %s", succ, previd, full)
			}
			again.h = alice.h
			if got := again.sync(t); !slices.Equal(got, []string{"m2"}) {
				t.Errorf("messages after resumption %v, want m2", got)
			}
		})
	}
}
