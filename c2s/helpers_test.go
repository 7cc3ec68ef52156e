package c2s_test

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// rawWait is how long a test waits for the server to end a raw connection:
// generous, because it only bounds a failure, never measures a success.
const rawWait = 30 * time.Second

// isMessage matches messages, optionally only those with a given id.
func isMessage(id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "message" && (id == "" || e.Get("id") == id)
	}
}

// chat checks that a message from one client reaches another's full JID,
// which shows that the server still serves both.
func chat(t *testing.T, from, to *testserver.Client) {
	t.Helper()
	id := "chat-" + router.NewID()
	from.MustSend(t, `<message type="chat" id="`+id+`" to="`+to.LocalAddr().String()+`"><body>still there?</body></message>`)
	m := to.MustNext(t, "message "+id, isMessage(id))
	if m.Get("from") != from.LocalAddr().String() {
		t.Errorf("message from %q, want %q", m.Get("from"), from.LocalAddr())
	}
}

// isTimeout tells whether err is a read or write deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isReset tells whether err is the peer resetting the connection, which a
// server that closes a connection with unread input does.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// tlsClient starts TLS over conn as a client trusting the test server.
func tlsClient(conn net.Conn, s *testserver.Server) *tls.Conn {
	tc := tls.Client(conn, s.TLSConfig())
	tc.SetDeadline(time.Now().Add(rawWait))
	return tc
}

// unexpected is an error for an element a test did not expect.
type unexpected struct{ e *router.Element }

func (u *unexpected) Error() string { return "unexpected " + u.e.String() }
