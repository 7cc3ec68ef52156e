package web

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client is who made a request, as far as the server can tell: the peer of
// the connection, or, when that peer is a trusted proxy, what the proxy's
// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host say. From anyone
// else those headers are ignored, since any client can write them.
type Client struct {
	// Addr is the client's address (the port is the connection's, or 0
	// when a proxy named the client).
	Addr netip.AddrPort
	// Secure is true when the client reached us over TLS: this
	// connection's, or the trusted proxy's (X-Forwarded-Proto: https).
	Secure bool
	// Host is the host the client asked for: the Host header, or the
	// trusted proxy's X-Forwarded-Host.
	Host string
	// Proxied is true when a trusted proxy's headers were applied.
	Proxied bool
}

type clientKey struct{}

// ClientOf returns the client of a request served by a Server. Handlers
// use it rather than r.RemoteAddr and r.TLS, which show the proxy; the
// server also rewrites r.RemoteAddr to the client's address.
func ClientOf(r *http.Request) Client {
	if c, ok := r.Context().Value(clientKey{}).(Client); ok {
		return c
	}
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return Client{Addr: ap, Secure: r.TLS != nil, Host: r.Host}
}

// WithClient returns ctx carrying c, for handlers tested without a Server.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// trusted tells whether a is one of the configured proxies.
func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client works out a request's Client.
func (s *Server) client(r *http.Request) Client {
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	c := Client{Addr: peer, Secure: r.TLS != nil, Host: r.Host}
	if !s.trusted(peer.Addr()) {
		return c
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		// Walk from the nearest hop back: the first address that is not
		// a trusted proxy is the client; what lies before it was written
		// by the client and proves nothing.
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			c.Addr = netip.AddrPortFrom(a.Unmap(), 0)
			c.Proxied = true
			if !s.trusted(a) {
				break
			}
		}
	}
	if proto := lastValue(r.Header.Values("X-Forwarded-Proto")); proto != "" {
		c.Secure = strings.EqualFold(proto, "https") || strings.EqualFold(proto, "wss")
		c.Proxied = true
	}
	if host := lastValue(r.Header.Values("X-Forwarded-Host")); host != "" {
		c.Host = host
		c.Proxied = true
	}
	return c
}

// lastValue is the last comma-separated value of a header: the one the
// nearest proxy added.
func lastValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// recorder notes the status and size of a response for the access log. It
// passes Hijack (WebSocket), Flush and http.ResponseController through.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap is for http.ResponseController.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *recorder) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack implements http.Hijacker, which WebSocket libraries assert.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return nc, brw, err
}
