package upload

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

func itoa(n int) string { return strconv.Itoa(n) }

func storageUser(local string) storage.User {
	return storage.User{Local: local, Domain: "localhost", Created: time.Now()}
}

// condition returns an IQ error's condition and type.
func condition(st *router.Stanza) (cond, typ, text string) {
	e := st.Child("", "error")
	if e == nil {
		return "", "", ""
	}
	for _, c := range e.Elements() {
		switch {
		case c.Name.Space == router.NSStanzas && c.Name.Local == "text":
			text = c.Text()
		case c.Name.Space == router.NSStanzas:
			cond = c.Name.Local
		}
	}
	return cond, e.Get("type"), text
}

// TestDisco checks the service's disco#info (XEP-0363 §4): the identity,
// the feature and the max-file-size form, and its empty disco#items.
func TestDisco(t *testing.T) {
	h := start(t, storetest.Backend{Name: "sqlite"}, nil)
	res := h.iq("alice@localhost/phone", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	out := res.String()
	for _, want := range []string{
		`category="store"`, `type="file"`, `var="urn:xmpp:http:upload:0"`,
		`<value>urn:xmpp:http:upload:0</value>`, `var="max-file-size"`, `<value>104857600</value>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("disco#info lacks %s: %s", want, out)
		}
	}
	if res := h.iq("alice@localhost/phone", `<query xmlns="http://jabber.org/protocol/disco#items"/>`); res.Type() != "result" || len(res.FirstChild().Elements()) != 0 {
		t.Errorf("disco#items = %s", res)
	}
	if res := h.iq("alice@localhost/phone", `<query xmlns="http://jabber.org/protocol/disco#info" node="x"/>`); res.Type() != "error" {
		t.Errorf("disco#info of a node = %s", res)
	}
}

// TestSlotRequest checks slot requests that get a slot (with URLs on the
// development default's https listener, 127.0.0.1:5281, at the account's
// domain) and those that get the XEP's errors: too large, bad input, and
// requesters that are not local accounts.
func TestSlotRequest(t *testing.T) {
	h := start(t, storetest.Backend{Name: "sqlite"}, func(o *Options) { o.MaxFileSize = 1000 })
	req := func(attrs string) string { return `<request xmlns="urn:xmpp:http:upload:0" ` + attrs + `/>` }
	tests := []struct {
		name, from, payload string
		cond, typ           string
	}{
		{"ok", "alice@localhost/phone", req(`filename="très cool.jpg" size="100" content-type="image/jpeg"`), "", ""},
		{"no content type", "alice@localhost/phone", req(`filename="a.bin" size="1"`), "", ""},
		{"empty file", "alice@localhost/phone", req(`filename="a.bin" size="0"`), "", ""},
		{"at the limit", "alice@localhost/phone", req(`filename="a.bin" size="1000"`), "", ""},
		{"too large", "alice@localhost/phone", req(`filename="a.bin" size="1001"`), "not-acceptable", "modify"},
		{"negative size", "alice@localhost/phone", req(`filename="a.bin" size="-1"`), "bad-request", "modify"},
		{"size not a number", "alice@localhost/phone", req(`filename="a.bin" size="ten"`), "bad-request", "modify"},
		{"no size", "alice@localhost/phone", req(`filename="a.bin"`), "bad-request", "modify"},
		{"no filename", "alice@localhost/phone", req(`size="1"`), "bad-request", "modify"},
		{"long filename", "alice@localhost/phone", req(`filename="` + strings.Repeat("a", 256) + `" size="1"`), "bad-request", "modify"},
		{"bad content type", "alice@localhost/phone", req(`filename="a" size="1" content-type="not a type"`), "bad-request", "modify"},
		{"remote account", "mallory@evil.example/x", req(`filename="a" size="1"`), "forbidden", "auth"},
		{"a server", "evil.example", req(`filename="a" size="1"`), "forbidden", "auth"},
		{"our domain itself", "localhost", req(`filename="a" size="1"`), "forbidden", "auth"},
		{"deleted account", "zed@localhost/x", req(`filename="a" size="1"`), "forbidden", "auth"},
		{"not a request", "alice@localhost/phone", `<slot xmlns="urn:xmpp:http:upload:0"/>`, "bad-request", "modify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.iq(tt.from, tt.payload)
			cond, typ, text := condition(res)
			if cond != tt.cond || typ != tt.typ {
				t.Fatalf("answer %s, want %q (%q)", res, tt.cond, tt.typ)
			}
			if tt.cond != "" && text == "" {
				t.Errorf("error without text: %s", res)
			}
			if tt.cond == "" {
				s := res.Child(NS, "slot")
				if s == nil || !strings.HasPrefix(s.Child(NS, "put").Get("url"), "https://localhost:5281/upload/") || s.Child(NS, "get") == nil {
					t.Errorf("slot = %s", res)
				}
			}
		})
	}
	res := h.iq("alice@localhost/phone", req(`filename="a.bin" size="1001"`))
	if ftl := res.Child("", "error").Child(NS, "file-too-large"); ftl == nil || ftl.Child(NS, "max-file-size").Text() != "1000" {
		t.Errorf("file-too-large = %s", res)
	}
	res = h.iq("alice@localhost/phone", req(`filename="très cool.jpg" size="1"`))
	if put := res.Child(NS, "slot").Child(NS, "put").Get("url"); !strings.Contains(put, "/tr%C3%A8s%20cool.jpg?") {
		t.Errorf("name in the URL: %s", put)
	}
	h.cfg.Web.PublicURL = "https://chat.example.org"
	res = h.iq("alice@localhost/phone", req(`filename="a" size="1"`))
	if put := res.Child(NS, "slot").Child(NS, "put").Get("url"); !strings.HasPrefix(put, "https://chat.example.org/upload/") {
		t.Errorf("URL under web.public_url: %s", put)
	}
	h.u.opts.PublicURL = "https://upload.example.org/"
	res = h.iq("alice@localhost/phone", req(`filename="a" size="1"`))
	if get := res.Child(NS, "slot").Child(NS, "get").Get("url"); !strings.HasPrefix(get, "https://upload.example.org/upload/") {
		t.Errorf("URL under public_url: %s", get)
	}
	res = h.iq("alice@localhost/phone", req(`filename="../../etc/passwd" size="1"`))
	if put := res.Child(NS, "slot").Child(NS, "put").Get("url"); !strings.Contains(put, "/.._.._etc_passwd?") {
		t.Errorf("a name with slashes in the URL: %s", put)
	}
}

// TestLimits checks the per-account quota and the daily limit: the
// resource-constraint error with its text and retry stamp, another
// account unaffected, and room again once files expire or a day passes.
func TestLimits(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := start(t, b, func(o *Options) {
			o.MaxFileSize, o.Quota, o.DailyQuota = 10, 20, 30
			o.ExpireAfter = 0
		})
		ask := func(from string, size int) *router.Stanza {
			return h.iq(from, `<request xmlns="urn:xmpp:http:upload:0" filename="f" size="`+itoa(size)+`"/>`)
		}
		want := func(res *router.Stanza, cond, textPart, retry string) {
			t.Helper()
			c, _, text := condition(res)
			if c != cond || !strings.Contains(text, textPart) {
				t.Fatalf("answer %s, want %q with %q", res, cond, textPart)
			}
			stamp := ""
			if e := res.Child("", "error"); e != nil {
				if r := e.Child(NS, "retry"); r != nil {
					stamp = r.Get("stamp")
				}
			}
			if stamp != retry {
				t.Errorf("retry stamp %q, want %q", stamp, retry)
			}
		}
		t0 := h.clock.now()
		want(ask("alice@localhost/a", 10), "", "", "")
		h.clock.advance(time.Hour)
		want(ask("alice@localhost/a", 10), "", "", "")
		want(ask("alice@localhost/a", 1), "resource-constraint", "Quota reached", "")
		want(ask("bob@localhost/b", 10), "", "", "")

		// With expiry, the quota frees when the oldest file goes.
		h.u.opts.ExpireAfter = 48 * 3600 * 1e9
		want(ask("alice@localhost/a", 1), "resource-constraint", "Quota reached",
			t0.Add(48*time.Hour+h.u.opts.SlotTimeout).Format(time.RFC3339))

		// The daily limit, with the quota out of the way.
		h.u.opts.Quota = 0
		want(ask("alice@localhost/a", 10), "", "", "")
		want(ask("alice@localhost/a", 1), "resource-constraint", "Daily limit", t0.Add(24*time.Hour).Format(time.RFC3339))
		h.clock.advance(23*time.Hour + time.Second)
		want(ask("alice@localhost/a", 10), "", "", "") // the first left the window
		want(ask("alice@localhost/a", 1), "resource-constraint", "Daily limit", t0.Add(25*time.Hour).Format(time.RFC3339))
	})
}

// TestPutGet walks one slot through HTTP: the preflight, refused PUTs
// (size, type, length, signature, name, ID), the PUT, a second PUT, and
// GET with its headers, ranges and HEAD.
func TestPutGet(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := start(t, b, nil)
		put, get := h.slot("très &quot;cool&quot;.txt", 11, "text/plain; charset=utf-8")
		ok := map[string]string{"Content-Type": "text/plain; charset=utf-8"}

		res := h.do(http.MethodOptions, put, "", map[string]string{
			"Origin": "https://web.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"})
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Content-Type") ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
		}
		if res := h.do(http.MethodGet, get, "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET before the PUT: %d", res.StatusCode)
		}

		i := strings.Index(put, "/upload/") + len("/upload/")
		other := byte('A')
		if put[i] == 'A' {
			other = 'B'
		}
		wrongID := put[:i] + string(other) + put[i+1:]
		refused := []struct {
			name   string
			url    string
			body   string
			header map[string]string
			status int
			says   string
		}{
			{"size mismatch", put, "hello", ok, http.StatusBadRequest, "does not match the slot's size"},
			{"too long", put, "hello world!", ok, http.StatusBadRequest, "does not match the slot's size"},
			{"content type mismatch", put, "hello world", map[string]string{"Content-Type": "text/html"}, http.StatusUnsupportedMediaType, "does not match"},
			{"no content type", put, "hello world", nil, http.StatusUnsupportedMediaType, "does not match"},
			{"signature tampered", tamper(t, put, "s", "AAAA"), "hello world", ok, http.StatusForbidden, "signature"},
			{"no signature", tamper(t, put, "s", ""), "hello world", ok, http.StatusForbidden, "signature"},
			{"expiry moved", tamper(t, put, "e", "99999999999"), "hello world", ok, http.StatusForbidden, "signature"},
			{"no expiry", tamper(t, put, "e", ""), "hello world", ok, http.StatusForbidden, "expiry"},
			{"name changed", strings.Replace(put, ".txt?", ".html?", 1), "hello world", ok, http.StatusForbidden, "signature"},
			{"id changed", wrongID, "hello world", ok, http.StatusForbidden, "signature"},
			{"GET signature for PUT", put[:strings.Index(put, "?")] + get[strings.Index(get, "?"):], "hello world", ok, http.StatusForbidden, "signature"},
			{"bad method", strings.Replace(put, "", "", 1), "", nil, http.StatusMethodNotAllowed, "method"},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				method := http.MethodPut
				if tt.status == http.StatusMethodNotAllowed {
					method = http.MethodPost
				}
				res := h.do(method, tt.url, tt.body, tt.header)
				body := readBody(t, res)
				if res.StatusCode != tt.status || !strings.Contains(body, tt.says) {
					t.Errorf("%d %q, want %d saying %q", res.StatusCode, body, tt.status, tt.says)
				}
			})
		}

		// A declared body beyond max_file_size is refused before it is read.
		big := httptest.NewRequest(http.MethodPut, put, strings.NewReader("hello world"))
		big.ContentLength = h.u.opts.MaxFileSize + 1
		rec := httptest.NewRecorder()
		h.web.ServeHTTP(rec, big)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "too large") {
			t.Errorf("PUT beyond max_file_size: %d %q", rec.Code, rec.Body)
		}

		if res := h.do(http.MethodPut, put, "hello world", ok); res.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %d %s", res.StatusCode, readBody(t, res))
		}
		if res := h.do(http.MethodPut, put, "HELLO WORLD", ok); res.StatusCode != http.StatusConflict {
			t.Errorf("second PUT: %d", res.StatusCode)
		}

		res = h.do(http.MethodGet, get, "", nil)
		if body := readBody(t, res); res.StatusCode != http.StatusOK || body != "hello world" {
			t.Fatalf("GET: %d %q", res.StatusCode, body)
		}
		for k, v := range map[string]string{
			"Content-Type":                "text/plain; charset=utf-8",
			"Content-Length":              "11",
			"Content-Disposition":         `inline; filename="tr_s _cool_.txt"; filename*=UTF-8''tr%C3%A8s%20%22cool%22.txt`,
			"X-Content-Type-Options":      "nosniff",
			"Access-Control-Allow-Origin": "*",
			"Accept-Ranges":               "bytes",
		} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("GET %s: %q, want %q", k, got, v)
			}
		}
		res = h.do(http.MethodGet, get, "", map[string]string{"Range": "bytes=6-"})
		if body := readBody(t, res); res.StatusCode != http.StatusPartialContent || body != "world" || res.Header.Get("Content-Range") != "bytes 6-10/11" {
			t.Errorf("range: %d %q %v", res.StatusCode, body, res.Header)
		}
		res = h.do(http.MethodGet, get, "", map[string]string{"Range": "bytes=20-"})
		if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("range beyond the end: %d", res.StatusCode)
		}
		res = h.do(http.MethodHead, get, "", nil)
		if body := readBody(t, res); res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Length") != "11" {
			t.Errorf("HEAD: %d %q %v", res.StatusCode, body, res.Header)
		}
		if res := h.do(http.MethodGet, tamper(t, get, "s", "x"), "", nil); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET with a tampered signature: %d", res.StatusCode)
		}
		if res := h.do(http.MethodGet, put, "", nil); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET with the PUT URL: %d", res.StatusCode)
		}
		// The metrics' byte counters: the one accepted PUT; the GET (11)
		// and the range (5), not HEAD nor what was refused.
		if stored, served := h.u.UploadBytes(); stored != 11 || served != 16 {
			t.Errorf("UploadBytes() = %d stored, %d served; want 11, 16", stored, served)
		}
	})
}

// TestServedTypes checks that active content is never served inline:
// HTML and SVG come as bytes to save, pictures inline.
func TestServedTypes(t *testing.T) {
	h := start(t, storetest.Backend{Name: "sqlite"}, nil)
	for _, tt := range []struct {
		stored, ctype, disposition string
	}{
		{"text/html", "application/octet-stream", "attachment"},
		{"text/html; charset=utf-8", "application/octet-stream", "attachment"},
		{"image/svg+xml", "application/octet-stream", "attachment"},
		{"application/xhtml+xml", "application/octet-stream", "attachment"},
		{"text/javascript", "application/octet-stream", "attachment"},
		{"image/png", "image/png", "inline"},
		{"video/mp4", "video/mp4", "inline"},
		{"application/pdf", "application/pdf", "attachment"},
		{"application/octet-stream", "application/octet-stream", "attachment"},
	} {
		put, get := h.slot("x", 3, tt.stored)
		if res := h.do(http.MethodPut, put, "abc", map[string]string{"Content-Type": tt.stored}); res.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", tt.stored, res.StatusCode, readBody(t, res))
		}
		res := h.do(http.MethodGet, get, "", nil)
		if got := res.Header.Get("Content-Type"); got != tt.ctype {
			t.Errorf("%s served as %q, want %q", tt.stored, got, tt.ctype)
		}
		if got := res.Header.Get("Content-Disposition"); !strings.HasPrefix(got, tt.disposition+";") {
			t.Errorf("%s disposition %q, want %s", tt.stored, got, tt.disposition)
		}
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s without CSP", tt.stored)
		}
	}
}

// TestTraversal checks that no request path reaches a file but the
// slot's own: dot segments, encoded ones, absolute paths and bad IDs.
func TestTraversal(t *testing.T) {
	h := start(t, storetest.Backend{Name: "sqlite"}, nil)
	secret := filepath.Join(h.cfg.DataDir, "upload-secret")
	put, get := h.slot("a.txt", 5, "text/plain")
	if res := h.do(http.MethodPut, put, "hello", map[string]string{"Content-Type": "text/plain"}); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	query := get[strings.Index(get, "?"):]
	for _, p := range []string{
		"/upload/../upload-secret",
		"/upload/../../upload-secret/x",
		"/upload/%2e%2e/%2e%2e%2fupload-secret",
		"/upload/..%2f..%2fupload-secret/x",
		"/upload/x/..%2F..%2F..%2Fupload-secret",
		"/upload//" + strings.TrimPrefix(secret, "/"),
		"/upload/" + url0(secret) + "/x",
		"/upload/AAAAAAAAAAAAAAAAAAAAAA/../../upload-secret",
		"/upload/.%2e/x",
	} {
		res := h.do(http.MethodGet, "http://localhost"+p+query, "", nil)
		body := readBody(t, res)
		if res.StatusCode < 300 || strings.Contains(body, "hello") || len(body) >= 64 && !strings.Contains(body, " ") {
			t.Errorf("GET %s: %d %q", p, res.StatusCode, body)
		}
		if res.StatusCode >= 500 {
			t.Errorf("GET %s: server error %d", p, res.StatusCode)
		}
		// Dot segments get the mux's redirect to the cleaned path,
		// which is no upload: follow it, as a client would.
		if res.StatusCode/100 == 3 {
			res = h.do(http.MethodGet, "http://localhost"+res.Header.Get("Location"), "", nil)
			body = readBody(t, res)
		}
		if res.StatusCode/100 != 4 || strings.Contains(body, "hello") {
			t.Errorf("GET %s: ends in %d %q, want a 4xx", p, res.StatusCode, body)
		}
	}
}

// url0 percent-encodes every slash of an absolute path.
func url0(p string) string { return strings.ReplaceAll(p, "/", "%2F") }

// TestExpiry checks the expiry job: a file past expire_after and a slot
// never uploaded are deleted with their records, a younger file stays, a
// PUT URL past its time is refused, and files without a record go.
func TestExpiry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := start(t, b, func(o *Options) { o.ExpireAfter = 24 * 3600 * 1e9 })
		ct := map[string]string{"Content-Type": "text/plain"}
		oldPut, oldGet := h.slot("old.txt", 3, "text/plain")
		if res := h.do(http.MethodPut, oldPut, "old", ct); res.StatusCode != http.StatusCreated {
			t.Fatal(res.StatusCode)
		}
		abandonedPut, _ := h.slot("never.txt", 3, "text/plain")
		h.clock.advance(h.u.opts.SlotTimeout + time.Second)
		if res := h.do(http.MethodPut, abandonedPut, "new", ct); res.StatusCode != http.StatusForbidden || !strings.Contains(readBody(t, res), "expired") {
			t.Errorf("PUT after the slot timed out: %d", res.StatusCode)
		}
		h.clock.advance(12 * time.Hour)
		newPut, newGet := h.slot("new.txt", 3, "text/plain")
		if res := h.do(http.MethodPut, newPut, "new", ct); res.StatusCode != http.StatusCreated {
			t.Fatal(res.StatusCode)
		}
		// An orphan: a file of a slot nobody knows.
		orphan := filepath.Join(h.u.root, "0123456789abcdef0123456789abcdef", "AAAAAAAAAAAAAAAAAAAAAA")
		if err := os.MkdirAll(filepath.Dir(orphan), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		h.clock.advance(12 * time.Hour)
		if err := h.u.sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Its URL has expired too: refused before the store is asked.
		if res := h.do(http.MethodGet, oldGet, "", nil); res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusNotFound {
			t.Errorf("expired file: %d", res.StatusCode)
		}
		if res := h.do(http.MethodGet, newGet, "", nil); res.StatusCode != http.StatusOK {
			t.Errorf("younger file: %d", res.StatusCode)
		}
		left, err := filepath.Glob(filepath.Join(h.u.root, "*", "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 {
			t.Errorf("files left: %q, want the younger one", left)
		}
		all, err := h.u.h.Store().Uploads().Expired(context.Background(), h.clock.now().Add(time.Hour), h.clock.now().Add(time.Hour), 10)
		if err != nil || len(all) != 1 || all[0].Name != "new.txt" {
			t.Errorf("records left: %v %v", all, err)
		}
	})
}

// TestRemoveAccountFiles checks the account data remover that user del
// and XEP-0077 <remove/> run: the account's files go, another's stay.
func TestRemoveAccountFiles(t *testing.T) {
	h := start(t, storetest.Backend{Name: "sqlite"}, nil)
	put, _ := h.slot("a.txt", 1, "text/plain")
	if res := h.do(http.MethodPut, put, "a", map[string]string{"Content-Type": "text/plain"}); res.StatusCode != http.StatusCreated {
		t.Fatal(res.StatusCode)
	}
	bobDir := filepath.Join(h.u.root, accountDir(jid.MustParse("bob@localhost")))
	if err := os.MkdirAll(bobDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := modules.RemoveAccountData(context.Background(), h.cfg, jid.MustParse("alice@localhost/phone")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.u.root, accountDir(jid.MustParse("alice@localhost")))); !os.IsNotExist(err) {
		t.Errorf("alice's directory: %v", err)
	}
	if _, err := os.Stat(bobDir); err != nil {
		t.Errorf("bob's directory: %v", err)
	}
	if err := modules.RemoveAccountData(context.Background(), h.cfg, jid.MustParse("carol@localhost")); err != nil {
		t.Errorf("an account without files: %v", err)
	}
}

// TestNames checks the cleaning of file names and the Content-Disposition
// of hostile ones.
func TestNames(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a.txt", "a.txt"}, {"../x", ".._x"}, {`..\x`, ".._x"}, {"..", "file"}, {".", "file"},
		{"a\x00b\nc", "a_b_c"}, {"très cool.jpg", "très cool.jpg"},
	} {
		if got, err := cleanName(tt.in); err != nil || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := cleanName("\xff"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	for _, tt := range []struct{ name, want string }{
		{`a"b;c\d%.txt`, `attachment; filename="a_b_c_d_.txt"; filename*=UTF-8''a%22b%3Bc%5Cd%25.txt`},
		{"日本.png", `attachment; filename="__.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png`},
	} {
		if got := disposition(false, tt.name); got != tt.want {
			t.Errorf("disposition(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}
