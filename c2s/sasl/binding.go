package sasl

import (
	"crypto"
	_ "crypto/sha512" // SHA-384 and SHA-512 for tls-server-end-point
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// Channel binding type names (RFC 5929, RFC 9266), as they appear after "p="
// in the GS2 header and in XEP-0440's <sasl-channel-binding/> list.
const (
	TLSExporter       = "tls-exporter"
	TLSServerEndPoint = "tls-server-end-point"
	TLSUnique         = "tls-unique"
)

// bindingTypes is every type we know, in order of preference: tls-exporter
// is the only one defined for TLS 1.3 that ties the proof to this very
// connection; tls-server-end-point only ties it to our certificate.
var bindingTypes = []string{TLSExporter, TLSServerEndPoint, TLSUnique}

// ChannelBinding gives the server's view of the channel binding data of the
// connection for a binding type, or an error wrapping ErrUnsupportedBinding
// if the connection cannot provide that type. The server compares it with
// what the client saw, which is what defeats a man in the middle who
// terminates TLS with a different certificate or session. A nil
// ChannelBinding means there is no TLS and so no -PLUS.
type ChannelBinding func(cbType string) ([]byte, error)

// Types lists the binding types cb can provide, most preferred first, for
// the XEP-0440 <sasl-channel-binding/> stream feature, so that clients pick a
// type that will work instead of guessing.
func (cb ChannelBinding) Types() []string {
	if cb == nil {
		return nil
	}
	var types []string
	for _, t := range bindingTypes {
		if data, err := cb(t); err == nil && len(data) > 0 {
			types = append(types, t)
		}
	}
	return types
}

// TLSBinding returns the channel binding of a server-side TLS connection.
// leaf is the certificate we presented (tls.Certificate.Leaf); Go's
// ConnectionState does not record it on the server side. A nil leaf turns
// tls-server-end-point off. It provides:
//
//   - tls-exporter (RFC 9266) when the keying material exporter is safe:
//     TLS 1.3, or TLS 1.2 with extended master secret (Go refuses otherwise).
//   - tls-server-end-point (RFC 5929 §4) when leaf is known and its
//     signature names exactly one hash.
//   - tls-unique (RFC 5929 §3) on TLS 1.2 only: it is undefined for TLS 1.3
//     (RFC 8446 §C.5), and Go withholds it when a resumption would make it
//     unsafe.
//
// A nil cs or an unfinished handshake gives a nil ChannelBinding.
func TLSBinding(cs *tls.ConnectionState, leaf *x509.Certificate) ChannelBinding {
	if cs == nil || !cs.HandshakeComplete {
		return nil
	}
	state := *cs // later changes by the caller must not change the binding
	return func(cbType string) ([]byte, error) {
		switch cbType {
		case TLSExporter:
			return exporterBinding(&state)
		case TLSServerEndPoint:
			return serverEndPointBinding(leaf)
		case TLSUnique:
			if state.Version != tls.VersionTLS12 || len(state.TLSUnique) == 0 {
				return nil, fmt.Errorf("%w: tls-unique on %s", ErrUnsupportedBinding, tls.VersionName(state.Version))
			}
			return append([]byte(nil), state.TLSUnique...), nil
		}
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedBinding, cbType)
	}
}

// exporterBinding is RFC 9266 §2: label "EXPORTER-Channel-Binding", no
// context, 32 bytes. A nil context is what Go and OpenSSL clients pass; it
// only differs from an empty one before TLS 1.3.
func exporterBinding(cs *tls.ConnectionState) ([]byte, error) {
	data, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: tls-exporter: %w", ErrUnsupportedBinding, err)
	}
	return data, nil
}

// serverEndPointBinding is RFC 5929 §4.1: the hash of our certificate, with
// SHA-256 standing in for MD5 and SHA-1, and no binding for signatures that
// use no single hash (such as Ed25519).
func serverEndPointBinding(leaf *x509.Certificate) ([]byte, error) {
	if leaf == nil {
		return nil, fmt.Errorf("%w: tls-server-end-point: certificate unknown", ErrUnsupportedBinding)
	}
	h, ok := endPointHash(leaf.SignatureAlgorithm)
	if !ok {
		return nil, fmt.Errorf("%w: tls-server-end-point: no hash for %s", ErrUnsupportedBinding, leaf.SignatureAlgorithm)
	}
	d := h.New()
	d.Write(leaf.Raw)
	return d.Sum(nil), nil
}

func endPointHash(alg x509.SignatureAlgorithm) (crypto.Hash, bool) {
	switch alg {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		return crypto.SHA256, true
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return crypto.SHA384, true
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}
