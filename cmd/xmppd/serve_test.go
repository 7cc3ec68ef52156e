package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
)

// hangGuard bounds waits that only a broken server would exceed, so that
// such a server fails the test instead of hanging it. It is not a
// performance threshold.
const hangGuard = 2 * time.Minute

// Namespaces a raw client needs.
const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
)

// serveProcess is a running "xmppd serve".
type serveProcess struct {
	cmd *exec.Cmd
	// addrs maps each listener type to the address it listens on, from the
	// "listening" log lines.
	addrs map[string]string

	mu  sync.Mutex
	log []string // every line of stderr

	exited   chan struct{} // closed when the process has exited
	scanDone chan struct{} // closed when stderr is read to the end
}

var listeningRE = regexp.MustCompile(`\bmsg=listening\b.*\btype=(\S+).*\baddress=(\S+)`)

// startServe runs xmppd with args in dir and waits until it listens on
// every listener the configuration has (wantListeners).
func startServe(t *testing.T, dir string, wantListeners int, args ...string) *serveProcess {
	t.Helper()
	pr, pw := io.Pipe()
	p := &serveProcess{
		cmd:      exec.Command(xmppdBin, args...),
		addrs:    map[string]string{},
		exited:   make(chan struct{}),
		scanDone: make(chan struct{}),
	}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan [2]string, 16)
	go func() {
		defer close(p.scanDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				listening <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		<-p.scanDone
		if t.Failed() {
			t.Logf("xmppd serve log:\n%s", p.logText())
		}
	})
	timeout := time.After(hangGuard)
	for len(p.addrs) < wantListeners {
		select {
		case l := <-listening:
			p.addrs[l[0]] = l[1]
		case <-p.exited:
			<-p.scanDone
			t.Fatalf("xmppd serve exited with %v before listening:\n%s", p.cmd.ProcessState, p.logText())
		case <-timeout:
			t.Fatalf("xmppd serve did not listen:\n%s", p.logText())
		}
	}
	return p
}

func (p *serveProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// stop sends SIGTERM and returns the exit code.
func (p *serveProcess) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(hangGuard):
		t.Fatal("xmppd serve did not exit after SIGTERM")
	}
	<-p.scanDone
	return p.cmd.ProcessState.ExitCode()
}

// rawClient speaks XMPP on a connection with the project's stream reader,
// so that the test sees exactly what the server wrote.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	in   *router.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(hangGuard))
	return &rawClient{t: t, conn: conn}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %s: %v", s, err)
	}
}

// open sends a stream header for localhost and returns the features.
func (c *rawClient) open() *router.Element {
	c.t.Helper()
	c.send(`<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	c.in = router.NewReader(c.conn, router.NSClient, 0, 0)
	if _, err := c.in.Header(); err != nil {
		c.t.Fatalf("read stream header: %v", err)
	}
	f := c.next()
	if f.Name.Space != router.NSStream || f.Name.Local != "features" {
		c.t.Fatalf("got %s, want stream features", f)
	}
	return f
}

func (c *rawClient) next() *router.Element {
	c.t.Helper()
	e, err := c.in.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return e
}

// startTLS negotiates STARTTLS, trusting the certificate in crtFile.
func (c *rawClient) startTLS(crtFile string) *router.Element {
	c.t.Helper()
	f := c.open()
	if f.Child(nsTLS, "starttls") == nil {
		c.t.Fatalf("no starttls in %s", f)
	}
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if e := c.next(); e.Name.Space != nsTLS || e.Name.Local != "proceed" {
		c.t.Fatalf("got %s, want proceed", e)
	}
	pem, err := os.ReadFile(crtFile)
	if err != nil {
		c.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := tls.Client(c.conn, &tls.Config{ServerName: "localhost", RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	return c.open()
}

// login authenticates with PLAIN and binds resource; it returns the SASL
// failure condition, or "" and the bound JID.
func (c *rawClient) login(crtFile, user, password, resource string) (failure, bound string) {
	c.t.Helper()
	f := c.startTLS(crtFile)
	mechs := f.Child(nsSASL, "mechanisms")
	if mechs == nil || !strings.Contains(mechs.String(), ">PLAIN<") {
		c.t.Fatalf("PLAIN not offered: %s", f)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + auth + `</auth>`)
	switch e := c.next(); {
	case e.Name.Space == nsSASL && e.Name.Local == "failure":
		if cond := e.FirstChild(); cond != nil {
			return cond.Name.Local, ""
		}
		return "(no condition)", ""
	case e.Name.Space != nsSASL || e.Name.Local != "success":
		c.t.Fatalf("got %s, want SASL success or failure", e)
	}
	if f := c.open(); f.Child(nsBind, "bind") == nil {
		c.t.Fatalf("no bind in %s", f)
	}
	c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource + `</resource></bind></iq>`)
	res := c.next()
	if res.Get("type") != "result" || res.Get("id") != "bind1" {
		c.t.Fatalf("bind: %s", res)
	}
	j := res.Child(nsBind, "bind").Child(nsBind, "jid")
	if j == nil {
		c.t.Fatalf("no jid in %s", res)
	}
	return "", j.Text()
}

// expectShutdown reads until the stream ends and checks that it ended with
// the system-shutdown stream error (RFC 6120 §4.9.3.19).
func (c *rawClient) expectShutdown() {
	c.t.Helper()
	var streamErr *router.Element
	for {
		e, err := c.in.Next()
		if errors.Is(err, router.ErrStreamEnd) {
			break
		}
		if err != nil {
			c.t.Fatalf("read until the end of the stream: %v (stream error so far: %v)", err, streamErr)
		}
		if e.Name.Space == router.NSStream && e.Name.Local == "error" {
			streamErr = e
		}
	}
	if streamErr == nil {
		c.t.Fatal("the stream ended without a stream error")
	}
	if streamErr.Child(nsStreams, "system-shutdown") == nil {
		c.t.Errorf("stream error %s, want system-shutdown", streamErr)
	}
	// The server closes the connection after </stream:stream>.
	if _, err := c.conn.Read(make([]byte, 1)); err == nil {
		c.t.Error("the connection is still open after </stream:stream>")
	}
}

func TestServeShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, config.Storage{SQLite: "./data/xmppd.db"})
	p := startServe(t, dir, 2, "-c", cfg, "serve")
	data := filepath.Join(filepath.Dir(cfg), "data")

	// A client that has only opened its stream.
	plain := dialRaw(t, p.addrs[config.ListenerC2SStartTLS])
	f := plain.open()
	if f.Child(nsTLS, "starttls") == nil || f.Child(nsTLS, "starttls").Child(nsTLS, "required") == nil {
		t.Errorf("features %s, want STARTTLS required", f)
	}
	// A client on the direct TLS port (XEP-0368) inside TLS.
	pem, err := os.ReadFile(filepath.Join(data, "localhost.crt"))
	if err != nil {
		t.Fatalf("no generated certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	direct := dialRaw(t, p.addrs[config.ListenerC2SDirectTLS])
	tc := tls.Client(direct.conn, &tls.Config{ServerName: "localhost", RootCAs: roots, NextProtos: []string{"xmpp-client"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	if got := tc.ConnectionState().NegotiatedProtocol; got != "xmpp-client" {
		t.Errorf("ALPN %q, want xmpp-client", got)
	}
	direct.conn = tc
	if f := direct.open(); f.Child(nsSASL, "mechanisms") == nil {
		t.Errorf("direct TLS features %s, want SASL mechanisms", f)
	}

	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	plain.expectShutdown()
	direct.expectShutdown()
	if log := p.logText(); !strings.Contains(log, "msg=stopped") {
		t.Errorf("no \"stopped\" in the log:\n%s", log)
	}
}

// TestServeWithCLI changes accounts with the CLI while the server runs on
// the same SQLite database, and logs in with them.
func TestServeWithCLI(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, config.Storage{SQLite: "./data/xmppd.db"})
	crt := filepath.Join(filepath.Dir(cfg), "data", "localhost.crt")
	p := startServe(t, t.TempDir(), 2, "-c", cfg, "serve")
	addr := p.addrs[config.ListenerC2SStartTLS]

	xmppd(t, "", "first\n", "-c", cfg, "user", "add", "dave@localhost", "--password-stdin").check(t, "created dave@localhost\n", "")

	dave := dialRaw(t, addr)
	if failure, bound := dave.login(crt, "dave", "first", "cli"); failure != "" || bound != "dave@localhost/cli" {
		t.Fatalf("login: failure %q, bound %q", failure, bound)
	}
	wrong := dialRaw(t, addr)
	if failure, _ := wrong.login(crt, "dave", "wrong", "x"); failure != "not-authorized" {
		t.Errorf("wrong password: failure %q, want not-authorized", failure)
	}
	nobody := dialRaw(t, addr)
	if failure, _ := nobody.login(crt, "nobody", "first", "x"); failure != "not-authorized" {
		t.Errorf("unknown user: failure %q, want not-authorized", failure)
	}

	xmppd(t, "", "second\n", "-c", cfg, "user", "passwd", "dave@localhost", "--password-stdin").check(t, "changed the password of dave@localhost\n", "")
	old := dialRaw(t, addr)
	if failure, _ := old.login(crt, "dave", "first", "x"); failure != "not-authorized" {
		t.Errorf("old password after passwd: failure %q, want not-authorized", failure)
	}
	neu := dialRaw(t, addr)
	if failure, bound := neu.login(crt, "dave", "second", "new"); failure != "" || bound != "dave@localhost/new" {
		t.Errorf("new password: failure %q, bound %q", failure, bound)
	}
	xmppd(t, "", "", "-c", cfg, "user", "list").check(t, "dave@localhost\n", "")

	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	// Bound sessions are told too.
	dave.expectShutdown()
	neu.expectShutdown()
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	busyCfg := filepath.Join(dir, "busy.yaml")
	text := fmt.Sprintf("data_dir: ./data\nhosts:\n  - domain: localhost\nlisteners:\n  - type: c2s\n    address: %q\n", busy.Addr())
	if err := os.WriteFile(busyCfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// A deprecated key is warned about in the log before anything else.
	oldCfg := filepath.Join(dir, "old.yaml")
	if err := os.WriteFile(oldCfg, []byte(text+"limits:\n  max_vcard_size: 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("hosts:\n  - domain: localhost\nlistener: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantLog string // in the log before the error
	}{
		{"port in use", []string{"-c", busyCfg, "serve"}, "listen c2s on " + busy.Addr().String(), ""},
		{"invalid config", []string{"-c", badCfg, "serve"}, `"listener"`, ""},
		{"missing config", []string{"-c", filepath.Join(dir, "missing.yaml"), "serve"}, "does not exist", ""},
		{"deprecated key", []string{"-c", oldCfg, "serve"}, "listen c2s on " + busy.Addr().String(),
			"level=WARN msg=\"" + oldCfg + ":8: limits.max_vcard_size is deprecated: write module_options.vcard.max_size instead\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := xmppd(t, "", "", tt.args...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
			}
			// The log may come first; the error is the last line.
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "xmppd: ") || !strings.Contains(last, tt.wantErr) {
				t.Errorf("last line of stderr %q, want \"xmppd: …%s…\"", last, tt.wantErr)
			}
			if !strings.Contains(r.stderr, tt.wantLog) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantLog)
			}
		})
	}
}

// TestServeDefault runs serve without a configuration file: the
// development default, on the standard ports, with everything under
// ./xmppd-data.
func TestServeDefault(t *testing.T) {
	for _, addr := range []string{":5222", ":5223"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the development default listens on %s, which is not free here: %v", addr, err)
		}
		ln.Close()
	}
	dir := t.TempDir()
	p := startServe(t, dir, 2, "serve")
	if got := p.addrs[config.ListenerC2SStartTLS]; !strings.HasSuffix(got, ":5222") {
		t.Errorf("c2s listens on %s, want port 5222", got)
	}
	if got := p.addrs[config.ListenerC2SDirectTLS]; !strings.HasSuffix(got, ":5223") {
		t.Errorf("c2s_tls listens on %s, want port 5223", got)
	}
	for _, name := range []string{"localhost.crt", "localhost.key", "xmppd.db"} {
		if _, err := os.Stat(filepath.Join(dir, "xmppd-data", name)); err != nil {
			t.Errorf("./xmppd-data/%s: %v", name, err)
		}
	}
	c := dialRaw(t, "127.0.0.1:5222")
	c.open()
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	c.expectShutdown()
	if log := p.logText(); !strings.Contains(log, "development default") {
		t.Errorf("the log does not say the development default is used:\n%s", log)
	}
}
