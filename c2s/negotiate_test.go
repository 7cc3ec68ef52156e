package c2s_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const nsToy = "urn:example:toy"

// toyPings counts the toy pings of one connection: a step's
// per-connection state.
var toyPings = router.NewSessionKey[int]("toy.pings")

// TestRegisteredStepAndElement registers a toy negotiation step, offered
// after authentication with a feature computed per connection and handling
// its own element, and a toy owner of a post-bind element: both work
// without any change to the standard steps, which still work around them,
// and a post-bind element nobody owns still closes the stream with
// unsupported-stanza-type.
func TestRegisteredStepAndElement(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	reg := s.C2S.AddStep(c2s.Step{
		Name:   "toy",
		Stages: c2s.AfterAuth,
		Features: func(n *c2s.Negotiation) []*router.Element {
			return []*router.Element{router.NewElement(nsToy, "toy", "host", n.Host(), "tls", boolText(n.TLSState() != nil))}
		},
		Match: func(_ *c2s.Negotiation, e *router.Element) bool {
			return e.Name.Space == nsToy && e.Name.Local == "ping"
		},
		Handle: func(_ context.Context, n *c2s.Negotiation, e *router.Element) (c2s.Outcome, error) {
			pings := toyPings.GetOrSet(n, func() int { return 0 }) + 1
			toyPings.Set(n, pings)
			return c2s.Continue, n.Write(router.NewElement(nsToy, "pong", "id", e.Get("id"),
				"stage", boolText(n.Stage() == c2s.AfterAuth), "n", strconv.Itoa(pings)))
		},
	})
	defer reg.Remove()
	seen := make(chan string, 1)
	el := s.C2S.HandleElement(nsToy, "active", func(_ context.Context, sess *c2s.Session, e *router.Element) error {
		seen <- sess.JID().String() + " " + e.Get("n")
		return nil
	})
	defer el.Remove()

	c, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	if _, err := c.Open(testserver.Header); err != nil {
		t.Fatal(err)
	}
	if c.Features.Child(nsToy, "toy") != nil {
		t.Errorf("toy feature offered before TLS: %s", c.Features)
	}
	if err := c.StartTLS(nil); err != nil {
		t.Fatal(err)
	}
	if cond, err := c.AuthPlain("alice", "pw"); err != nil || cond != "" {
		t.Fatalf("auth: %q %v", cond, err)
	}
	toy := c.Features.Child(nsToy, "toy")
	if toy == nil || toy.Get("host") != s.Domain() || toy.Get("tls") != "true" {
		t.Fatalf("features after auth %s; want the toy feature for this connection", c.Features)
	}
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
		t.Fatalf("features after auth %s; want bind still", c.Features)
	}
	for i, id := range []string{"t1", "t2"} {
		if err := c.Send(`<ping xmlns='` + nsToy + `' id='` + id + `'/>`); err != nil {
			t.Fatal(err)
		}
		e, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Space != nsToy || e.Name.Local != "pong" || e.Get("id") != id || e.Get("stage") != "true" || e.Get("n") != strconv.Itoa(i+1) {
			t.Fatalf("answer to toy ping %s: %s; want pong %d of this connection", id, e, i+1)
		}
	}
	full, err := c.Bind("r")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(`<active xmlns='` + nsToy + `' n='1'/>`); err != nil {
		t.Fatal(err)
	}
	// The stream goes on: a ping round trip after the element.
	if e, err := c.Request(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil || e.Get("type") != "result" {
		t.Fatalf("ping after the owned element: %v %v", e, err)
	}
	if got := <-seen; got != full+" 1" {
		t.Errorf("element handler saw %q; want %q", got, full+" 1")
	}
	if err := c.Send(`<inactive xmlns='` + nsToy + `'/>`); err != nil {
		t.Fatal(err)
	}
	if cond, err := c.WaitStreamError(rawWait); err != nil || cond != "unsupported-stanza-type" {
		t.Errorf("unowned element: stream error %q (%v); want unsupported-stanza-type", cond, err)
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
