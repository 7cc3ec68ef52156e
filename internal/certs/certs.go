// Package certs loads each served domain's certificate, generating a
// self-signed one for a domain configured without files (the zero-setup
// development default), and selects among them by SNI so that one listener
// serves several virtual hosts.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xmppd/xmppd/config"
)

// Store holds one certificate per served domain.
type Store struct {
	byDomain map[string]*tls.Certificate
	first    *tls.Certificate
}

// Load reads or generates the certificates of all hosts in cfg.
func Load(cfg *config.Config) (*Store, error) {
	s := &Store{byDomain: map[string]*tls.Certificate{}}
	for _, h := range cfg.Hosts {
		certFile, keyFile := h.Cert, h.Key
		if certFile == "" && keyFile == "" {
			certFile = filepath.Join(cfg.DataDir, h.Domain+".crt")
			keyFile = filepath.Join(cfg.DataDir, h.Domain+".key")
			if err := ensureSelfSigned(h.Domain, certFile, keyFile); err != nil {
				return nil, err
			}
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("certs: load certificate of %s: %w", h.Domain, err)
		}
		if c.Leaf == nil && len(c.Certificate) > 0 {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certs: parse certificate of %s: %w", h.Domain, err)
			}
		}
		s.byDomain[h.Domain] = &c
		if s.first == nil {
			s.first = &c
		}
	}
	if s.first == nil {
		return nil, errors.New("certs: no hosts configured")
	}
	return s, nil
}

// ForDomain returns the certificate of a served domain, or nil. A service
// address directly under a served domain (conference., upload.) shares its
// parent's certificate, which therefore names it too (the generated ones
// name *.DOMAIN); a service under no served domain has none, and its s2s
// streams authenticate by dialback instead of SASL EXTERNAL.
func (s *Store) ForDomain(domain string) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(domain, "."))
	if c, ok := s.byDomain[name]; ok {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return s.byDomain[name[i+1:]]
	}
	return nil
}

// GetCertificate picks the certificate by SNI, as ForDomain does, falling
// back to the first host's for clients that send none.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.ForDomain(hello.ServerName); c != nil {
		return c, nil
	}
	return s.first, nil
}

// ServerConfig returns a TLS 1.2+ server configuration offering the ALPN
// protocol given (XEP-0368: "xmpp-client" or "xmpp-server"); empty for
// STARTTLS listeners.
func (s *Store) ServerConfig(alpn string) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
	}
	if alpn != "" {
		c.NextProtos = []string{alpn}
	}
	return c
}

// ensureSelfSigned writes a self-signed certificate for domain unless the
// files already exist.
func ensureSelfSigned(domain, certFile, keyFile string) error {
	if _, err := os.Stat(certFile); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("certs: %w", err)
	}
	certPEM, keyPEM, err := SelfSigned(domain, 10*365*24*time.Hour)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("certs: create %s: %w", filepath.Dir(certFile), err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("certs: write key: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("certs: write certificate: %w", err)
	}
	return nil
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for domain and its
// subdomains, returning certificate and key as PEM.
func SelfSigned(domain string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain},
		DNSNames:              []string{domain, "*." + domain},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
