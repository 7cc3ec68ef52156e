package testserver

import (
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
)

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a listener whose address must be known before its server starts,
// as a static s2s route to it must.
//
// The port is picked below the kernel's ephemeral range, which is where
// ports for ":0" listeners and for the local end of outgoing connections
// come from: a port taken from that range and closed again could be handed
// to any connection of this or another test process before the server
// binds it ("address already in use"). Below the range only another
// FreeAddr can pick it, and the bind check below skips ports in use.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux
// reports it in /proc; elsewhere the IANA range's start is assumed).
func ephemeralLow() int {
	const iana = 49152
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return iana
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return iana
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 11000 {
		return iana
	}
	return n
}

// Federation is a set of test servers, one per domain, that federate on
// loopback: each has an s2s (STARTTLS) listener at an address fixed in
// advance and a static route to each of the others.
type Federation struct {
	t      testing.TB
	addrs  map[string]string // domain → s2s listener address
	mutate func(*config.Config)
	// backend is the database every server gets one of its own on.
	backend storetest.Backend
}

// NewFederation chooses the s2s addresses of domains; Start starts their
// servers. mutate, if not nil, may change each server's configuration
// after the federation settings are made (s2s.routes is never nil then);
// it tells the servers apart by c.Hosts[0].Domain.
func NewFederation(t testing.TB, mutate func(*config.Config), domains ...string) *Federation {
	t.Helper()
	return NewFederationOn(t, storetest.Backend{Name: "sqlite"}, mutate, domains...)
}

// NewFederationOn is NewFederation with each server's database on b, for
// the tests that run on every backend (storetest.Run).
func NewFederationOn(t testing.TB, b storetest.Backend, mutate func(*config.Config), domains ...string) *Federation {
	t.Helper()
	f := &Federation{t: t, addrs: map[string]string{}, mutate: mutate, backend: b}
	for _, d := range domains {
		f.addrs[d] = FreeAddr(t)
	}
	return f
}

// StartFederation starts a Federation of domains and returns their
// servers, in the order of domains.
func StartFederation(t testing.TB, mutate func(*config.Config), domains ...string) []*Server {
	t.Helper()
	return StartFederationOn(t, storetest.Backend{Name: "sqlite"}, mutate, domains...)
}

// StartFederationOn is StartFederation with the databases on b.
func StartFederationOn(t testing.TB, b storetest.Backend, mutate func(*config.Config), domains ...string) []*Server {
	t.Helper()
	f := NewFederationOn(t, b, mutate, domains...)
	servers := make([]*Server, len(domains))
	for i, d := range domains {
		servers[i] = f.Start(d)
	}
	return servers
}

// Addr is the address of domain's s2s listener.
func (f *Federation) Addr(domain string) string { return f.addrs[domain] }

// Start starts the server of domain on its s2s address. After the previous
// one has shut down, it starts the domain again on the same address, with
// a fresh database and a fresh dialback secret, as a restarted peer would
// look from outside.
func (f *Federation) Start(domain string) *Server {
	f.t.Helper()
	return StartOn(f.t, f.backend, func(c *config.Config) {
		c.Hosts = []config.Host{{Domain: domain}}
		c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerS2SStartTLS, Address: f.addrs[domain]})
		routes := maps.Clone(f.addrs)
		delete(routes, domain)
		c.S2S.Routes = routes
		if f.mutate != nil {
			f.mutate(c)
		}
	})
}
