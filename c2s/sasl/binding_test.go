package sasl

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed ECDSA-with-SHA-256 certificate for example.net.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.net"},
		DNSNames:     []string{"example.net"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

// tlsPair runs a real TLS handshake of the given version over an in-memory
// pipe and returns both ends' connection state, plus the server certificate.
func tlsPair(t testing.TB, version uint16) (client, server tls.ConnectionState, leaf *x509.Certificate) {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv := tls.Server(c1, &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             version,
		MaxVersion:             version,
		SessionTicketsDisabled: true, // no post-handshake write to block the pipe
	})
	cli := tls.Client(c2, &tls.Config{
		RootCAs:    roots,
		ServerName: "example.net",
		MinVersion: version,
		MaxVersion: version,
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return cli.ConnectionState(), srv.ConnectionState(), cert.Leaf
}

func TestTLSBinding(t *testing.T) {
	tests := []struct {
		name    string
		version uint16
		noLeaf  bool
		want    []string
	}{
		{"TLS 1.3", tls.VersionTLS13, false, []string{TLSExporter, TLSServerEndPoint}},
		{"TLS 1.3 without certificate", tls.VersionTLS13, true, []string{TLSExporter}},
		{"TLS 1.2", tls.VersionTLS12, false, []string{TLSExporter, TLSServerEndPoint, TLSUnique}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server, leaf := tlsPair(t, tt.version)
			if tt.noLeaf {
				leaf = nil
			}
			cb := TLSBinding(&server, leaf)
			if got := cb.Types(); !slices.Equal(got, tt.want) {
				t.Errorf("Types() = %v, want %v", got, tt.want)
			}
			// Both ends must compute the same data, or -PLUS never works.
			wantData := map[string][]byte{TLSServerEndPoint: sha256Of(client.PeerCertificates[0].Raw)}
			if ekm, err := client.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err == nil {
				wantData[TLSExporter] = ekm
			}
			if client.TLSUnique != nil {
				wantData[TLSUnique] = client.TLSUnique
			}
			for _, typ := range tt.want {
				got, err := cb(typ)
				if err != nil || !bytes.Equal(got, wantData[typ]) {
					t.Errorf("%s: got %x, %v; the client sees %x", typ, got, err, wantData[typ])
				}
			}
			for _, typ := range []string{TLSUnique, TLSServerEndPoint, "tls-foo", ""} {
				if slices.Contains(tt.want, typ) {
					continue
				}
				if _, err := cb(typ); !errors.Is(err, ErrUnsupportedBinding) {
					t.Errorf("%s: error %v, want ErrUnsupportedBinding", typ, err)
				}
			}
		})
	}
}

func TestTLSBindingWithoutTLS(t *testing.T) {
	if cb := TLSBinding(nil, nil); cb != nil {
		t.Error("TLSBinding(nil) is not nil")
	}
	if cb := TLSBinding(&tls.ConnectionState{}, nil); cb != nil {
		t.Error("TLSBinding before the handshake is not nil")
	}
	var cb ChannelBinding
	if types := cb.Types(); types != nil {
		t.Errorf("nil ChannelBinding offers %v", types)
	}
}

func TestServerEndPointHash(t *testing.T) {
	raw := []byte("not really DER")
	sum384 := sha512.Sum384(raw)
	sum512 := sha512.Sum512(raw)
	tests := []struct {
		alg  x509.SignatureAlgorithm
		want []byte // nil: no binding
	}{
		{x509.MD5WithRSA, sha256Of(raw)},
		{x509.SHA1WithRSA, sha256Of(raw)},
		{x509.ECDSAWithSHA1, sha256Of(raw)},
		{x509.SHA256WithRSA, sha256Of(raw)},
		{x509.ECDSAWithSHA256, sha256Of(raw)},
		{x509.SHA256WithRSAPSS, sha256Of(raw)},
		{x509.SHA384WithRSA, sum384[:]},
		{x509.ECDSAWithSHA384, sum384[:]},
		{x509.SHA512WithRSAPSS, sum512[:]},
		{x509.PureEd25519, nil},
		{x509.UnknownSignatureAlgorithm, nil},
	}
	for _, tt := range tests {
		got, err := serverEndPointBinding(&x509.Certificate{Raw: raw, SignatureAlgorithm: tt.alg})
		switch {
		case tt.want == nil && !errors.Is(err, ErrUnsupportedBinding):
			t.Errorf("%s: got %x, %v; want ErrUnsupportedBinding", tt.alg, got, err)
		case tt.want != nil && (err != nil || !bytes.Equal(got, tt.want)):
			t.Errorf("%s: got %x, %v; want %x", tt.alg, got, err, tt.want)
		}
	}
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}
