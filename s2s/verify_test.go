package s2s

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNow is the time every test certificate is checked at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             testNow.Add(-24 * time.Hour),
		NotAfter:              testNow.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// certSpec describes a leaf (or intermediate, with isCA) to issue.
type certSpec struct {
	cn          string
	dns         []string
	srv         []string // SRVName otherNames
	xmppAddr    []string // id-on-xmppAddr otherNames
	uri         string
	criticalSAN bool // and no subject, as RFC 5280 requires then
	notAfter    time.Time
	eku         []x509.ExtKeyUsage
	isCA        bool
}

func (ca *testCA) issue(t *testing.T, s certSpec) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: s.cn},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     s.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  s.eku,
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = testNow.Add(90 * 24 * time.Hour)
	}
	if s.isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	}
	if san := subjectAltName(t, s); san != nil {
		// Go would write only the DNS names and URIs it knows: write the
		// whole extension ourselves, otherNames included.
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Critical: s.criticalSAN, Value: san}}
		if s.criticalSAN {
			tmpl.Subject = pkix.Name{}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// subjectAltName encodes GeneralNames for s, or nil if s has no names.
func subjectAltName(t *testing.T, s certSpec) []byte {
	t.Helper()
	var names []asn1.RawValue
	for _, d := range s.dns {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)})
	}
	if s.uri != "" {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(s.uri)})
	}
	for _, x := range s.xmppAddr {
		names = append(names, otherName(t, oidXmppAddr, x, "utf8"))
	}
	for _, v := range s.srv {
		names = append(names, otherName(t, oidSRVName, v, "ia5"))
	}
	if len(names) == 0 {
		return nil
	}
	der, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// otherName encodes [0] IMPLICIT SEQUENCE { type-id, [0] EXPLICIT value }.
func otherName(t *testing.T, typeID asn1.ObjectIdentifier, value, stringType string) asn1.RawValue {
	t.Helper()
	inner, err := asn1.MarshalWithParams(value, stringType)
	if err != nil {
		t.Fatal(err)
	}
	oid, err := asn1.Marshal(typeID)
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner})
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)}
}

func TestVerifyDomain(t *testing.T) {
	ca := newTestCA(t, "Test Root")
	other := newTestCA(t, "Other Root")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	inter, interKey := ca.issue(t, certSpec{cn: "Test Intermediate", isCA: true})
	interCA := &testCA{cert: inter, key: interKey}

	// chain issues a leaf from ca and returns the chain a peer would send.
	chain := func(issuer *testCA, s certSpec, extra ...*x509.Certificate) []*x509.Certificate {
		leaf, _ := issuer.issue(t, s)
		return append([]*x509.Certificate{leaf}, extra...)
	}
	const domain = "example.test"
	tests := []struct {
		name     string
		certs    []*x509.Certificate
		domain   string
		wantErrs []error // nil: valid
		wantText string  // in the error
	}{
		{name: "DNS-ID", certs: chain(ca, certSpec{dns: []string{"example.test"}})},
		{name: "DNS-ID among others", certs: chain(ca, certSpec{dns: []string{"a.test", "example.test"}})},
		{name: "DNS-ID in other case", certs: chain(ca, certSpec{dns: []string{"EXAMPLE.test"}})},
		{name: "domain with trailing dot", domain: "example.test.", certs: chain(ca, certSpec{dns: []string{"example.test"}})},
		{name: "wildcard", domain: "a.example.test", certs: chain(ca, certSpec{dns: []string{"*.example.test"}})},
		{name: "wildcard not the parent", certs: chain(ca, certSpec{dns: []string{"*.example.test"}}),
			wantErrs: []error{ErrNameMismatch}, wantText: "DNS:*.example.test"},
		{name: "wildcard one label only", domain: "a.b.example.test", certs: chain(ca, certSpec{dns: []string{"*.example.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "wildcard over a top-level domain", domain: "example.test", certs: chain(ca, certSpec{dns: []string{"*.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "partial wildcard label", domain: "ab.example.test", certs: chain(ca, certSpec{dns: []string{"a*.example.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "other DNS-ID", certs: chain(ca, certSpec{dns: []string{"other.test"}}),
			wantErrs: []error{ErrNameMismatch}, wantText: "DNS:other.test"},
		{name: "SRV-ID", certs: chain(ca, certSpec{srv: []string{"_xmpp-server.example.test"}})},
		{name: "SRV-ID for clients only", certs: chain(ca, certSpec{srv: []string{"_xmpp-client.example.test"}}),
			wantErrs: []error{ErrNameMismatch}, wantText: "SRV:_xmpp-client.example.test"},
		{name: "SRV-ID for another domain", certs: chain(ca, certSpec{srv: []string{"_xmpp-server.other.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "XmppAddr", certs: chain(ca, certSpec{xmppAddr: []string{"example.test"}})},
		{name: "XmppAddr of a user", certs: chain(ca, certSpec{xmppAddr: []string{"juliet@example.test"}}),
			wantErrs: []error{ErrNameMismatch}, wantText: "XmppAddr:juliet@example.test"},
		{name: "XmppAddr with other names", certs: chain(ca, certSpec{dns: []string{"other.test"}, srv: []string{"_xmpp-server.other.test"}, xmppAddr: []string{"example.test"}})},
		{name: "XmppAddr only, critical SAN, no subject", certs: chain(ca, certSpec{xmppAddr: []string{"example.test"}, criticalSAN: true})},
		{name: "SRV-ID only, critical SAN, no subject", certs: chain(ca, certSpec{srv: []string{"_xmpp-server.example.test"}, criticalSAN: true})},
		{name: "CN without SAN", certs: chain(ca, certSpec{cn: "example.test"})},
		{name: "CN ignored beside a DNS-ID", certs: chain(ca, certSpec{cn: "example.test", dns: []string{"other.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "CN ignored beside an XmppAddr", certs: chain(ca, certSpec{cn: "example.test", xmppAddr: []string{"other.test"}}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "CN ignored beside a URI", certs: chain(ca, certSpec{cn: "example.test", uri: "xmpp:other.test"}),
			wantErrs: []error{ErrNameMismatch}},
		{name: "no names at all", certs: chain(ca, certSpec{}), wantErrs: []error{ErrNameMismatch}, wantText: "names nothing"},
		{name: "IDN domain, A-label DNS-ID", domain: "bücher.test", certs: chain(ca, certSpec{dns: []string{"xn--bcher-kva.test"}})},
		{name: "A-label domain, U-label XmppAddr", domain: "xn--bcher-kva.test", certs: chain(ca, certSpec{xmppAddr: []string{"bücher.test"}})},
		{name: "through an intermediate", certs: chain(interCA, certSpec{dns: []string{"example.test"}}, inter)},
		{name: "intermediate missing", certs: chain(interCA, certSpec{dns: []string{"example.test"}}),
			wantErrs: []error{ErrUntrusted}, wantText: "unknown authority"},
		{name: "serverAuth only (a Let's Encrypt certificate)", certs: chain(ca, certSpec{dns: []string{"example.test"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})},
		{name: "clientAuth only", certs: chain(ca, certSpec{dns: []string{"example.test"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})},
		{name: "e-mail protection only", certs: chain(ca, certSpec{dns: []string{"example.test"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}),
			wantErrs: []error{ErrUntrusted}},
		{name: "expired", certs: chain(ca, certSpec{dns: []string{"example.test"}, notAfter: testNow.Add(-time.Minute)}),
			wantErrs: []error{ErrUntrusted}, wantText: "expired"},
		{name: "unknown CA", certs: chain(other, certSpec{dns: []string{"example.test"}}),
			wantErrs: []error{ErrUntrusted}, wantText: "unknown authority"},
		{name: "unknown CA and wrong name", certs: chain(other, certSpec{dns: []string{"other.test"}}),
			wantErrs: []error{ErrUntrusted, ErrNameMismatch}, wantText: "other.test"},
		{name: "no certificate", wantErrs: []error{ErrUntrusted}, wantText: "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.domain
			if d == "" {
				d = domain
			}
			err := VerifyDomain(tt.certs, d, roots, testNow)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("VerifyDomain(%s) = %v, want nil", d, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyDomain(%s) = nil, want %v", d, tt.wantErrs)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("VerifyDomain(%s) = %v, want it to wrap %v", d, err, want)
				}
			}
			for _, notWant := range []error{ErrUntrusted, ErrNameMismatch} {
				if errors.Is(err, notWant) && !containsErr(tt.wantErrs, notWant) {
					t.Errorf("VerifyDomain(%s) = %v, which wraps %v too", d, err, notWant)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("VerifyDomain(%s) = %q, want it to mention %q", d, err, tt.wantText)
			}
		})
	}
}

func containsErr(errs []error, e error) bool {
	for _, x := range errs {
		if x == e {
			return true
		}
	}
	return false
}

// The caller's certificate must not be changed by the critical-SAN
// workaround: it is the TLS connection's.
func TestVerifyDomainLeavesCertificateAlone(t *testing.T) {
	ca := newTestCA(t, "Test Root")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	leaf, _ := ca.issue(t, certSpec{xmppAddr: []string{"example.test"}, criticalSAN: true})
	before := len(leaf.UnhandledCriticalExtensions)
	if err := VerifyDomain([]*x509.Certificate{leaf}, "example.test", roots, testNow); err != nil {
		t.Fatal(err)
	}
	if len(leaf.UnhandledCriticalExtensions) != before {
		t.Errorf("UnhandledCriticalExtensions changed from %d to %d entries", before, len(leaf.UnhandledCriticalExtensions))
	}
}

func TestLoadRoots(t *testing.T) {
	ca := newTestCA(t, "File Root")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("system only", func(t *testing.T) {
		roots, err := LoadRoots("")
		if err != nil || roots == nil {
			t.Fatalf("LoadRoots(\"\") = %v, %v", roots, err)
		}
	})
	t.Run("with ca_file", func(t *testing.T) {
		roots, err := LoadRoots(caFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := ca.issue(t, certSpec{dns: []string{"example.test"}})
		if err := VerifyDomain([]*x509.Certificate{leaf}, "example.test", roots, testNow); err != nil {
			t.Errorf("a certificate from ca_file's CA: %v", err)
		}
	})
	for _, bad := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		t.Run("bad "+filepath.Base(bad), func(t *testing.T) {
			if _, err := LoadRoots(bad); err == nil || !strings.Contains(err.Error(), bad) {
				t.Errorf("LoadRoots(%s) error = %v, want one naming the file", bad, err)
			}
		})
	}
}
