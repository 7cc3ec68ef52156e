package modules_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// asker is a module that keeps its Host, for the test to send the
// server's IQ requests through it as a module would.
const askerID = "test-iq-asker"

var (
	askerMu   sync.Mutex
	askerHost *modules.Host
)

type asker struct{}

func init() {
	modules.Register(askerID, func() asker { return asker{} })
}

func (asker) Start(_ context.Context, h *modules.Host) error {
	askerMu.Lock()
	askerHost = h
	askerMu.Unlock()
	return nil
}

const nsDiscoInfo = "http://jabber.org/protocol/disco#info"

// answer is how the test's mellium client answers the server: disco#info
// with its identity and features, feature-not-implemented for
// urn:example:refuse, and nothing for urn:example:silent.
func answer(req *router.Element) *router.Element {
	q := req.FirstChild()
	id, to := req.Get("id"), req.Get("from")
	switch {
	case q != nil && q.Name.Space == nsDiscoInfo:
		return router.NewElement("", "iq", "type", "result", "id", id, "to", to).Append(
			router.NewElement(nsDiscoInfo, "query").Append(
				router.NewElement(nsDiscoInfo, "identity", "category", "client", "type", "pc", "name", "mellium"),
				router.NewElement(nsDiscoInfo, "feature", "var", nsDiscoInfo),
				router.NewElement(nsDiscoInfo, "feature", "var", "urn:xmpp:ping"),
			))
	case q != nil && q.Name.Space == "urn:example:silent":
		return nil
	case q != nil && q.Name.Space == "urn:example:refuse":
		return router.NewElement("", "iq", "type", "error", "id", id, "to", to).Append(
			router.NewElement("", "error", "type", "cancel").Append(router.NewElement(router.NSStanzas, "feature-not-implemented")))
	}
	return router.NewElement("", "iq", "type", "result", "id", id, "to", to)
}

// TestSendIQToClient checks the server's own IQ requests end to end
// (issue 8): a module asks a connected client for its disco#info and gets
// the answer; an IQ error comes back as an error with the answer; a
// request nobody answers gives up when its context is done.
func TestSendIQToClient(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { testserver.EnableModules(c, askerID) })
	srv.AddUser("alice", "pw")
	alice := srv.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop", AnswerIQ: answer})
	askerMu.Lock()
	h := askerHost
	askerMu.Unlock()
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		ns      string
		wantErr error
		check   func(t *testing.T, resp *router.Stanza)
	}{{
		name: "disco#info",
		ns:   nsDiscoInfo,
		check: func(t *testing.T, resp *router.Stanza) {
			q := resp.Child(nsDiscoInfo, "query")
			if q == nil || q.Child(nsDiscoInfo, "identity") == nil || q.Child(nsDiscoInfo, "identity").Get("name") != "mellium" {
				t.Errorf("answer %s lacks the client's identity", resp)
			}
			if !resp.From.Equal(alice.LocalAddr()) {
				t.Errorf("answer from %s, want %s", resp.From, alice.LocalAddr())
			}
		},
	}, {
		name:    "error answer",
		ns:      "urn:example:refuse",
		wantErr: router.ErrIQError,
		check: func(t *testing.T, resp *router.Stanza) {
			if resp == nil || resp.Type() != "error" || resp.Child("", "error").Child(router.NSStanzas, "feature-not-implemented") == nil {
				t.Errorf("got %v, want the client's feature-not-implemented", resp)
			}
		},
	}, {
		name:    "no answer: the context ends the wait",
		ctx:     expired,
		ns:      "urn:example:silent",
		wantErr: context.Canceled,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "get").Append(router.NewElement(tt.ns, "query"))}
			iq.SetFrom(jid.MustParse(srv.Domain()))
			iq.SetTo(alice.LocalAddr())
			resp, err := h.Router().SendIQ(ctx, iq)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SendIQ: %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}
}

// TestHostRouterIsNarrow checks that what Host.Router gives a module is only
// the modules.Router interface: a type assertion does not reach the router's
// registration or session-event methods, which would bypass the Host's
// bookkeeping and the hooks.
func TestHostRouterIsNarrow(t *testing.T) {
	r := newRouter(t)
	set, err := start(t, r, askerID)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	askerMu.Lock()
	rt := askerHost.Router()
	askerMu.Unlock()
	if _, ok := rt.(interface {
		AddFilter(owner string, priority int, f router.Filter) router.Registration
	}); ok {
		t.Error("Host.Router's value has AddFilter")
	}
	if _, ok := rt.(interface {
		SessionEnded(ctx context.Context, s router.Session)
	}); ok {
		t.Error("Host.Router's value has SessionEnded")
	}
}
