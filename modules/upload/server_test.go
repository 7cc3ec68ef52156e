package upload_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules"
)

const ns = "urn:xmpp:http:upload:0"

// httpClient trusts the test server's certificate.
func httpClient(s *testserver.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots, MinVersion: tls.VersionTLS12}}}
}

// requestSlot asks for a slot over XMPP and returns its URLs.
func requestSlot(t *testing.T, c *testserver.Client, name string, size int, ctype string) (put, get string) {
	t.Helper()
	e := c.MustRequest(t, `<iq type="get" id="slot1" to="upload.localhost"><request xmlns="`+ns+`" filename="`+name+`" size="`+itoa(size)+`" content-type="`+ctype+`"/></iq>`)
	testserver.WantResult(t, e)
	slot := e.Child(ns, "slot")
	if slot == nil {
		t.Fatalf("no slot: %s", e)
	}
	return slot.Child(ns, "put").Get("url"), slot.Child(ns, "get").Get("url")
}

func itoa(n int) string { return strconv.Itoa(n) }

// portOf is the port of s's https listener.
func portOf(s *testserver.Server) string {
	return strconv.Itoa(s.Addr(config.ListenerHTTPS).(*net.TCPAddr).Port)
}

func putFile(t *testing.T, cl *http.Client, url, ctype string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func getFile(t *testing.T, cl *http.Client, url string) (int, []byte, http.Header) {
	t.Helper()
	res, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b, res.Header
}

// TestUploadEndToEnd is the whole way with the development default's
// module: a logged-in client finds the service in disco, asks for a slot
// over XMPP, and a net/http client PUTs the file over TLS and GETs it back
// (whole, a range, through traversal attempts); after a restart the file
// is still served; `user del` removes it.
func TestUploadEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	var storageCfg config.Storage
	s := testserver.Start(t, func(c *config.Config) { c.DataDir = dataDir; storageCfg = c.Storage })
	s.AddUser("alice", "secret")
	c := s.Login("alice", "secret", testserver.LoginOptions{})
	items := c.MustRequest(t, `<iq type="get" id="i1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if !strings.Contains(items.String(), `jid="upload.localhost"`) {
		t.Errorf("disco#items of the server lacks upload.localhost: %s", items)
	}
	info := c.MustRequest(t, `<iq type="get" id="i2" to="upload.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !testserver.HasFeature(info, ns) || !strings.Contains(info.String(), "max-file-size") {
		t.Errorf("disco#info of upload.localhost: %s", info)
	}

	content := []byte("the bytes of a photo, or so")
	put, get := requestSlot(t, c, "photo 1.jpg", len(content), "image/jpeg")
	if !strings.HasPrefix(put, "https://localhost:") || !strings.Contains(put, "/upload/") || !strings.Contains(get, "/photo%201.jpg?") {
		t.Fatalf("URLs %s %s: want https on the listener", put, get)
	}
	cl := httpClient(s)
	if code := putFile(t, cl, put, "image/jpeg", content); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if code := putFile(t, cl, put, "image/jpeg", content); code != http.StatusConflict {
		t.Errorf("second PUT: %d", code)
	}
	code, body, h := getFile(t, cl, get)
	if code != http.StatusOK || !bytes.Equal(body, content) || h.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET: %d %q %v", code, body, h)
	}
	req, _ := http.NewRequest(http.MethodGet, get, nil)
	req.Header.Set("Range", "bytes=4-8")
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(part) != "bytes" {
		t.Errorf("range: %d %q", res.StatusCode, part)
	}
	base := get[:strings.Index(get, "/upload/")]
	query := get[strings.Index(get, "?"):]
	for _, p := range []string{"/upload/../upload-secret", "/upload/%2e%2e/%2e%2e%2fupload-secret", "/upload/..%2f..%2fupload-secret/x", "/upload//etc/passwd"} {
		code, body, _ := getFile(t, cl, base+p+query)
		if code < 400 || code >= 500 || bytes.Contains(body, content) {
			t.Errorf("GET %s: %d %q, want a 4xx", p, code, body)
		}
	}
	c.Close()

	// A restart keeps the file, its record and the secret.
	ctx := context.Background()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := testserver.Start(t, func(c *config.Config) { c.DataDir = dataDir; c.Storage = storageCfg })
	// The listener's port changed: the URL's path and query still hold.
	get2 := "https://localhost:" + portOf(s2) + get[strings.Index(get, "/upload/"):]
	if code, body, _ := getFile(t, httpClient(s2), get2); code != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("GET after a restart: %d %q", code, body)
	}

	// user del, as the CLI runs it.
	u := admin.Users{Config: s2.Config, Users: s2.Store.Users(), Store: s2.Store,
		DeleteData: func(ctx context.Context, account jid.JID) error {
			return modules.RemoveAccountData(ctx, s2.Config, account)
		}}
	if _, err := u.Delete(ctx, "alice@localhost"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := getFile(t, httpClient(s2), get2); code != http.StatusNotFound {
		t.Errorf("GET after user del: %d", code)
	}
	left, _ := filepath.Glob(filepath.Join(dataDir, "upload", "*", "*"))
	if len(left) != 0 {
		t.Errorf("files left after user del: %q", left)
	}
}

// TestRemoveAccountInBand checks that XEP-0077 <remove/> deletes the
// account's files.
func TestRemoveAccountInBand(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("bob", "secret")
	c := s.Login("bob", "secret", testserver.LoginOptions{})
	put, _ := requestSlot(t, c, "a.txt", 3, "text/plain")
	if code := putFile(t, httpClient(s), put, "text/plain", []byte("abc")); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Config.DataDir, "upload", "*", "*")); len(left) != 1 {
		t.Fatalf("files after the PUT: %q", left)
	}
	e := c.MustRequest(t, `<iq type="set" id="unreg1"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	testserver.WantResult(t, e)
	if left, _ := filepath.Glob(filepath.Join(s.Config.DataDir, "upload", "*", "*")); len(left) != 0 {
		t.Errorf("files after <remove/>: %q", left)
	}
	if _, err := os.Stat(filepath.Join(s.Config.DataDir, "upload-secret")); err != nil {
		t.Errorf("secret: %v", err)
	}
}
