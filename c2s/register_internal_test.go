package c2s

import (
	"io"
	"net"
	"strings"
	"testing"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/internal/routertest"
)

// TestFinishWritesQueued checks that closing a stream with an error writes
// the IQs and presences queued before the error, so a result queued just
// before Close is not lost, and leaves messages queued, in order, for
// requeue.
func TestFinishWritesQueued(t *testing.T) {
	server, client := net.Pipe()
	c := &conn{raw: server, nc: server, headerSent: true, done: make(chan struct{})}
	sess := &Session{out: newOutQueue(8)}
	for _, s := range []string{
		`<message id='m1' to='a@localhost/r'><body>1</body></message>`,
		`<iq type='result' id='unreg1' to='a@localhost/r'/>`,
		`<message id='m2' to='a@localhost/r'><body>2</body></message>`,
		`<presence id='p1' from='b@localhost/r' to='a@localhost/r'/>`,
	} {
		sess.out.push(routertest.Stanza(t, s))
	}
	c.cause = stream.NotAuthorized
	close(c.done)
	written := make(chan string)
	go func() {
		b, _ := io.ReadAll(client)
		written <- string(b)
	}()
	c.finish(sess.appendQueued(nil))
	got := <-written
	iq, p, se := strings.Index(got, `id="unreg1"`), strings.Index(got, `id="p1"`), strings.Index(got, "<stream:error>")
	if iq < 0 || p < 0 || se < 0 || iq > p || p > se || !strings.Contains(got, "<not-authorized") {
		t.Errorf("written %q; want the IQ, then the presence, then the not-authorized stream error", got)
	}
	if strings.Contains(got, "<message") {
		t.Errorf("messages written: %q", got)
	}
	left := sess.out.take()
	for i, id := range []string{"m1", "m2"} {
		if i >= len(left) {
			t.Fatalf("message %s not left queued", id)
		}
		if left[i].ID() != id {
			t.Errorf("requeued %s, want %s", left[i].ID(), id)
		}
	}
}
