package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/web"
)

// start runs a web server with cfg (defaults filled in) on a loopback
// port and returns its base URL.
func start(t *testing.T, mutate func(*config.Web), log *slog.Logger) (*web.Server, string) {
	t.Helper()
	c := config.Default()
	if mutate != nil {
		mutate(&c.Web)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := web.New(web.Options{Config: c.Web, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

// echo answers with the request body, or 413 past the limit.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if web.BodyTooLarge(w, err) {
		return
	}
	w.Write(b)
})

func TestBodyLimits(t *testing.T) {
	s, base := start(t, func(w *config.Web) { w.MaxBodySize = 16 }, nil)
	mustHandle(t, s, web.Route{Pattern: "POST /echo", Handler: echo})
	mustHandle(t, s, web.Route{Pattern: "POST /big", Handler: echo, MaxBodySize: 64})
	tests := []struct {
		name    string
		path    string
		body    string
		chunked bool // no Content-Length: the limit is found while reading
		want    int
	}{
		{name: "within the limit", path: "/echo", body: strings.Repeat("a", 16), want: http.StatusOK},
		{name: "declared too large", path: "/echo", body: strings.Repeat("a", 17), want: http.StatusRequestEntityTooLarge},
		{name: "chunked too large", path: "/echo", body: strings.Repeat("a", 100), chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "a route's own limit", path: "/big", body: strings.Repeat("a", 64), want: http.StatusOK},
		{name: "past a route's own limit", path: "/big", body: strings.Repeat("a", 65), chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "no route", path: "/nothing", body: strings.Repeat("a", 17), want: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length from net/http
			}
			resp, err := http.Post(base+tt.path, "text/plain", body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tt.want)
			}
			if tt.want == http.StatusOK && string(got) != tt.body {
				t.Errorf("echo %q, want %q", got, tt.body)
			}
			if tt.want == http.StatusRequestEntityTooLarge && !strings.Contains(string(got), "too large") {
				t.Errorf("413 body %q does not say why", got)
			}
		})
	}
}

// TestSlowHeadersTimedOut: a client that never finishes its headers
// (slowloris) is disconnected after read_header_timeout.
func TestSlowHeadersTimedOut(t *testing.T) {
	_, base := start(t, func(w *config.Web) { w.ReadHeaderTimeout = 100 * time.Millisecond }, nil)
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// Bounds a failure only: the server must close long before.
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a client with unfinished headers open")
	}
}

// TestOversizedHeaders get 431.
func TestOversizedHeaders(t *testing.T) {
	_, base := start(t, func(w *config.Web) { w.MaxHeaderBytes = 1024 }, nil)
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8192))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

// clientEcho answers with what the server thinks of the client.
var clientEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c := web.ClientOf(r)
	fmt.Fprintf(w, "%s %t %s %s", c.Addr.Addr(), c.Secure, c.Host, r.RemoteAddr)
})

func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		header  map[string]string
		want    string // address, secure, host
	}{
		{name: "direct", want: "127.0.0.1 false localhost"},
		{name: "headers from an untrusted peer are ignored", trusted: []string{"10.0.0.1"},
			header: map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"},
			want:   "127.0.0.1 false localhost"},
		{name: "a trusted proxy", trusted: []string{"127.0.0.1"},
			header: map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"},
			want:   "203.0.113.7 true chat.example.org"},
		{name: "a chain of trusted proxies", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			header: map[string]string{"X-Forwarded-For": "203.0.113.7, 10.1.2.3"},
			want:   "203.0.113.7 false localhost"},
		{name: "what the client wrote itself is not believed", trusted: []string{"127.0.0.1"},
			header: map[string]string{"X-Forwarded-For": "198.51.100.66, 203.0.113.7"},
			want:   "203.0.113.7 false localhost"},
		{name: "IPv6 client", trusted: []string{"127.0.0.1"},
			header: map[string]string{"X-Forwarded-For": "2001:db8::1"},
			want:   "2001:db8::1 false localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, func(w *config.Web) { w.TrustedProxies = tt.trusted }, nil)
			mustHandle(t, s, web.Route{Pattern: "GET /client", Handler: clientEcho})
			req, _ := http.NewRequest("GET", base+"/client", nil)
			req.Host = "localhost"
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			got := get(t, req, http.StatusOK)
			fields := strings.Fields(got)
			if len(fields) != 4 || strings.Join(fields[:3], " ") != tt.want {
				t.Errorf("client %q, want %q", got, tt.want)
			}
			// The handler's r.RemoteAddr is the client too.
			if len(fields) == 4 && !strings.Contains(fields[3], strings.Fields(tt.want)[0]) {
				t.Errorf("RemoteAddr %q, want the client's address", fields[3])
			}
		})
	}
}

func get(t *testing.T, req *http.Request, want int) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d (%s), want %d", req.Method, req.URL, resp.StatusCode, b, want)
	}
	return string(b)
}

func mustHandle(t *testing.T, s *web.Server, r web.Route) interface{ Remove() } {
	t.Helper()
	reg, err := s.Handle(r)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestRegistration: routes come and go; a conflicting pattern is an error,
// not a panic.
func TestRegistration(t *testing.T) {
	s, base := start(t, nil, nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "one") })
	reg := mustHandle(t, s, web.Route{Pattern: "GET /one", Handler: ok})
	req, _ := http.NewRequest("GET", base+"/one", nil)
	if got := get(t, req, http.StatusOK); got != "one" {
		t.Errorf("got %q", got)
	}
	if _, err := s.Handle(web.Route{Pattern: "GET /one", Handler: ok}); err == nil {
		t.Error("a second GET /one was accepted")
	}
	reg.Remove()
	get(t, req, http.StatusNotFound)
	mustHandle(t, s, web.Route{Pattern: "GET /one", Handler: ok})
	get(t, req, http.StatusOK)
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.b.String()), "\n")
}

// TestAccessLogAndPanic: every request is logged as structured fields,
// without its query; a panicking handler gets 500 and the server goes on.
func TestAccessLogAndPanic(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s, base := start(t, func(w *config.Web) { w.AccessLog = true }, log)
	mustHandle(t, s, web.Route{Pattern: "GET /boom", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })})
	req, _ := http.NewRequest("GET", base+"/boom?secret=x", nil)
	req.Header.Set("User-Agent", "test-agent")
	get(t, req, http.StatusInternalServerError)
	req, _ = http.NewRequest("GET", base+"/.well-known/host-meta.json", nil)
	get(t, req, http.StatusOK)

	var entries []map[string]any
	for _, l := range buf.lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "http request" {
			entries = append(entries, m)
		}
	}
	if len(entries) != 2 {
		t.Fatalf("access log entries %v, want 2", entries)
	}
	e := entries[0]
	if e["path"] != "/boom" || e["status"] != float64(500) || e["method"] != "GET" || e["client"] != "127.0.0.1" || e["user_agent"] != "test-agent" {
		t.Errorf("entry %v", e)
	}
	if strings.Contains(fmt.Sprint(e), "secret") {
		t.Errorf("entry %v logs the query", e)
	}
	if entries[1]["status"] != float64(200) || entries[1]["bytes"].(float64) == 0 {
		t.Errorf("entry %v", entries[1])
	}
}

// TestHijackThroughRecorder: a handler can take the connection over (as
// WebSocket does) through the server's wrapping.
func TestHijackThroughRecorder(t *testing.T) {
	s, base := start(t, nil, nil)
	mustHandle(t, s, web.Route{Pattern: "GET /raw", LongLived: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer nc.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nraw ok")
		brw.Flush()
	})})
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /raw HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "raw ok" {
		t.Errorf("got %q", b)
	}
}

// TestPathWildcardsAndPort checks that a route's wildcards reach its
// handler (r.PathValue) and that Port reports the port being served.
func TestPathWildcardsAndPort(t *testing.T) {
	s, base := start(t, nil, nil)
	mustHandle(t, s, web.Route{Pattern: "/files/{id}/{name}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.PathValue("id")+"|"+r.PathValue("name"))
	})})
	req, _ := http.NewRequest("GET", base+"/files/abc/tr%C3%A8s%20cool.jpg", nil)
	if got := get(t, req, http.StatusOK); got != "abc|très cool.jpg" {
		t.Errorf("wildcards %q", got)
	}
	want := base[strings.LastIndexByte(base, ':')+1:]
	if p, ok := s.Port(false); !ok || strconv.Itoa(p) != want {
		t.Errorf("Port(false) = %d, %v; want %s", p, ok, want)
	}
	if _, ok := s.Port(true); ok {
		t.Error("Port(true) without an https listener")
	}
}
