package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
)

// configFor returns a configuration serving domains, with its data
// directory in a new temporary directory.
func configFor(t *testing.T, domains ...string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Hosts = nil
	for _, d := range domains {
		cfg.Hosts = append(cfg.Hosts, config.Host{Domain: d})
	}
	return cfg
}

func load(t *testing.T, cfg *config.Config) *certs.Store {
	t.Helper()
	s, err := certs.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// roots trusts the certificate files given.
func roots(t *testing.T, files ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", f)
		}
	}
	return pool
}

func TestSelfSignedGeneratedOnce(t *testing.T) {
	cfg := configFor(t, "localhost")
	crt := filepath.Join(cfg.DataDir, "localhost.crt")
	key := filepath.Join(cfg.DataDir, "localhost.key")

	first := load(t, cfg)
	crtPEM, err := os.ReadFile(crt)
	if err != nil {
		t.Fatalf("no certificate generated: %v", err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatalf("no key generated: %v", err)
	}
	for path, want := range map[string]os.FileMode{cfg.DataDir: 0o700, key: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, got, want)
		}
	}

	// A second start (a restart) reuses the files.
	second := load(t, cfg)
	crtAgain, _ := os.ReadFile(crt)
	keyAgain, _ := os.ReadFile(key)
	if !bytes.Equal(crtPEM, crtAgain) || !bytes.Equal(keyPEM, keyAgain) {
		t.Error("the certificate or key was generated again")
	}
	if !bytes.Equal(first.ForDomain("localhost").Certificate[0], second.ForDomain("localhost").Certificate[0]) {
		t.Error("the second load serves another certificate")
	}

	leaf := first.ForDomain("localhost").Leaf
	if leaf == nil {
		t.Fatal("Leaf is not set")
	}
	if want := []string{"localhost", "*.localhost"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNS names %q, want %q", leaf.DNSNames, want)
	}
	pool := roots(t, crt)
	for _, name := range []string{"localhost", "conference.localhost", "upload.localhost"} {
		opts := x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.org", Roots: pool}); err == nil {
		t.Error("the certificate verifies for a domain it is not for")
	}
}

func TestSelfSigned(t *testing.T) {
	certPEM, keyPEM, err := certs.SelfSigned("example.org", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if leaf.Subject.CommonName != "example.org" || now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		t.Errorf("CN %q valid %s to %s", leaf.Subject.CommonName, leaf.NotBefore, leaf.NotAfter)
	}
	// Two calls make two different keys.
	_, keyPEM2, err := certs.SelfSigned("example.org", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(keyPEM, keyPEM2) {
		t.Error("two calls gave the same key")
	}
}

func TestGetCertificate(t *testing.T) {
	cfg := configFor(t, "localhost", "example.org", "chat.example.net")
	s := load(t, cfg)
	tests := []struct {
		sni  string
		want string // the CN of the certificate chosen
	}{
		{"localhost", "localhost"},
		{"example.org", "example.org"},
		{"chat.example.net", "chat.example.net"},
		{"EXAMPLE.ORG", "example.org"},
		{"example.org.", "example.org"},
		// Subdomains share their parent's certificate.
		{"conference.example.org", "example.org"},
		{"upload.chat.example.net", "chat.example.net"},
		{"Conference.Example.Org.", "example.org"},
		// Otherwise: the first host's.
		{"", "localhost"},
		{"example.com", "localhost"},
		{"a.b.example.org", "localhost"},
		{"example.net", "localhost"},
		{".example.org", "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Leaf.Subject.CommonName; got != tt.want {
				t.Errorf("SNI %q chose %s, want %s", tt.sni, got, tt.want)
			}
		})
	}
	// ForDomain, which s2s presents as a client certificate, chooses the
	// same way but has no fallback: a service address under a served
	// domain gets its parent's certificate, anything else none.
	for domain, want := range map[string]string{
		"example.org":             "example.org",
		"conference.example.org":  "example.org",
		"upload.chat.example.net": "chat.example.net",
		"example.com":             "",
		"a.b.example.org":         "",
	} {
		got := ""
		if c := s.ForDomain(domain); c != nil {
			got = c.Leaf.Subject.CommonName
		}
		if got != want {
			t.Errorf("ForDomain(%q) is the certificate of %q, want %q", domain, got, want)
		}
	}
}

// TestHandshake runs real TLS handshakes against ServerConfig, with clients
// that check the certificate as XMPP clients do.
func TestHandshake(t *testing.T) {
	cfg := configFor(t, "localhost", "example.org")
	s := load(t, cfg)
	pool := roots(t, filepath.Join(cfg.DataDir, "localhost.crt"), filepath.Join(cfg.DataDir, "example.org.crt"))
	tests := []struct {
		name     string
		alpn     string
		client   *tls.Config
		wantErr  bool
		wantALPN string
	}{
		{name: "STARTTLS to example.org", client: &tls.Config{ServerName: "example.org", RootCAs: pool}},
		{name: "STARTTLS to a subdomain", client: &tls.Config{ServerName: "conference.localhost", RootCAs: pool}},
		{
			name: "direct TLS with ALPN", alpn: "xmpp-client",
			client:   &tls.Config{ServerName: "localhost", RootCAs: pool, NextProtos: []string{"xmpp-client"}},
			wantALPN: "xmpp-client",
		},
		{
			name:    "TLS 1.1 is refused",
			client:  &tls.Config{ServerName: "localhost", RootCAs: pool, MaxVersion: tls.VersionTLS11},
			wantErr: true,
		},
		{
			name:    "a client that wants the other domain's name is refused",
			client:  &tls.Config{ServerName: "example.com", RootCAs: pool},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := s.ServerConfig(tt.alpn)
			if sc.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want TLS 1.2 or later", sc.MinVersion)
			}
			if tt.alpn == "" && len(sc.NextProtos) > 0 {
				t.Errorf("NextProtos %q for a STARTTLS listener", sc.NextProtos)
			}
			// TCP rather than net.Pipe: a side that fails sends an alert,
			// which must not wait for the other side to read.
			cc, sconn := tcpPair(t)
			srv := tls.Server(sconn, sc)
			srvErr := make(chan error, 1)
			go func() { srvErr <- srv.HandshakeContext(context.Background()); sconn.Close() }()
			client := tls.Client(cc, tt.client)
			err := client.HandshakeContext(context.Background())
			cc.Close()
			<-srvErr
			if tt.wantErr {
				if err == nil {
					t.Error("the handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			st := client.ConnectionState()
			if st.NegotiatedProtocol != tt.wantALPN {
				t.Errorf("ALPN %q, want %q", st.NegotiatedProtocol, tt.wantALPN)
			}
			want := strings.TrimPrefix(tt.client.ServerName, "conference.")
			if got := st.PeerCertificates[0].Subject.CommonName; got != want {
				t.Errorf("server presented %s, want %s", got, want)
			}
		})
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestConfiguredFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := certs.SelfSigned("example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "my.crt"), filepath.Join(dir, "my.key")
	if err := os.WriteFile(crt, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, "example.org")
	cfg.Hosts[0].Cert, cfg.Hosts[0].Key = crt, key
	s := load(t, cfg)
	if !bytes.Contains(certPEM, []byte("CERTIFICATE")) || s.ForDomain("example.org") == nil {
		t.Fatal("no certificate for example.org")
	}
	block := s.ForDomain("example.org").Certificate[0]
	want, _ := tls.X509KeyPair(certPEM, keyPEM)
	if !bytes.Equal(block, want.Certificate[0]) {
		t.Error("the configured certificate is not the one served")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "example.org.crt")); err == nil {
		t.Error("a self-signed certificate was generated although files are configured")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, cfg *config.Config)
		wantErr string
	}{
		{
			name:    "no hosts",
			setup:   func(t *testing.T, cfg *config.Config) { cfg.Hosts = nil },
			wantErr: "no hosts",
		},
		{
			name: "configured files missing",
			setup: func(t *testing.T, cfg *config.Config) {
				cfg.Hosts[0].Cert = filepath.Join(t.TempDir(), "missing.crt")
				cfg.Hosts[0].Key = filepath.Join(t.TempDir(), "missing.key")
			},
			wantErr: "example.org",
		},
		{
			name: "a damaged generated certificate is not replaced silently",
			setup: func(t *testing.T, cfg *config.Config) {
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cfg.DataDir, "example.org.crt"), []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "example.org",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configFor(t, "example.org")
			tt.setup(t, cfg)
			_, err := certs.Load(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
