package upload

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/web"
)

// testID is the module ID the internal tests register the module under,
// so that they get hold of the instance and its clock.
const testID = "upload-internal-test"

var (
	builtMu sync.Mutex
	built   *Upload
)

func init() {
	modules.RegisterWithOptions(testID, DefaultOptions(), func(o Options) *Upload {
		// start holds builtMu.
		u := New(o)
		built = u
		return u
	})
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is the module running on a router and a web server without
// listeners, with accounts alice and bob of localhost.
type harness struct {
	t     *testing.T
	u     *Upload
	web   *web.Server
	clock *clock
	cfg   *config.Config
}

// start runs the module with opts changed by mutate, on b.
func start(t *testing.T, b storetest.Backend, mutate func(*Options)) *harness {
	t.Helper()
	db := storetest.Open(t, b)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Modules = []string{testID}
	log := slog.New(slog.DiscardHandler)
	w, err := web.New(web.Options{Config: cfg.Web, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, l := range []string{"alice", "bob"} {
		if err := db.Users().Create(ctx, storageUser(l)); err != nil {
			t.Fatal(err)
		}
	}
	r := router.New(log, router.NewLocalRegistry(), routertest.Accounts{Users: db.Users()}, []string{routertest.Domain})
	builtMu.Lock()
	defer builtMu.Unlock()
	set, err := modules.Start(ctx, cfg.Modules, r, db, cfg, log, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Stop() })
	u := built
	// The tests sweep when they choose: stop the module's own job, so
	// that nothing else reads the clock and the options they change.
	u.Stop()
	c := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	u.now = c.now
	if mutate != nil {
		mutate(&u.opts)
	}
	return &harness{t: t, u: u, web: w, clock: c, cfg: cfg}
}

// iq runs an IQ from from to the service and returns the answer.
func (h *harness) iq(from, payload string) *router.Stanza {
	h.t.Helper()
	st := routertest.Stanza(h.t, `<iq type="get" id="q1" from="`+from+`" to="upload.localhost">`+payload+`</iq>`)
	var fn func(context.Context, *router.Stanza) *router.Stanza
	switch st.FirstChild().Name.Space {
	case NS:
		fn = h.u.requestSlot
	case nsInfo:
		fn = h.u.discoInfo
	default:
		fn = h.u.discoItems
	}
	return fn(context.Background(), st)
}

// slot asks for a slot as alice and returns its PUT and GET URLs.
func (h *harness) slot(name string, size int, ctype string) (put, get string) {
	h.t.Helper()
	req := `<request xmlns="urn:xmpp:http:upload:0" filename="` + name + `" size="` + itoa(size) + `"`
	if ctype != "" {
		req += ` content-type="` + ctype + `"`
	}
	res := h.iq("alice@localhost/phone", req+`/>`)
	s := res.Child(NS, "slot")
	if res.Type() != "result" || s == nil {
		h.t.Fatalf("slot request: %s", res)
	}
	return s.Child(NS, "put").Get("url"), s.Child(NS, "get").Get("url")
}

// do sends an HTTP request to the web server and returns the response.
func (h *harness) do(method, target string, body string, header map[string]string) *http.Response {
	h.t.Helper()
	var rd io.Reader
	if body != "" || method == http.MethodPut {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.web.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tamper returns rawURL with its query value key replaced.
func tamper(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
