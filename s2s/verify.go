package s2s

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// The two ways a peer certificate fails. They are separate because they
// call for different fixes (the operator of a private CA adds it to
// ca_file; a name mismatch is the peer's misconfiguration or an attack)
// and `xmppd s2s check` tells them apart. Either one means the peer is
// not authenticated by its certificate: no SASL EXTERNAL, and dialback
// only where the policy allows it.
var (
	ErrUntrusted    = errors.New("certificate chain not trusted")
	ErrNameMismatch = errors.New("certificate not valid for the domain")
)

// Object identifiers of the name forms XMPP uses beside dNSName.
var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// id-on-xmppAddr (RFC 6120 §13.7.1.4): a JID as a UTF8String.
	oidXmppAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
	// id-on-dnsSRV, SRVName (RFC 4985): "_xmpp-server.example.org", IA5String.
	oidSRVName = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7}
)

// srvPrefix is the service label of a server-to-server SRV-ID.
const srvPrefix = "_xmpp-server."

// LoadRoots returns the CAs trusted for peer certificates: the system's
// and, if caFile is set, those in that PEM file, for federations that run
// their own CA (and tests).
func LoadRoots(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		// No system store (some containers): trust only caFile.
		roots = x509.NewCertPool()
	}
	if caFile == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("s2s: ca_file: %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s2s: ca_file %s: no PEM certificate in it", caFile)
	}
	return roots, nil
}

// VerifyDomain checks that certs (a peer's chain as
// tls.ConnectionState.PeerCertificates gives it: the leaf first, then
// intermediates) is trusted by roots at time now and names domain, as RFC
// 6120 §13.7.2 and RFC 6125 require of a server's certificate. A nil roots
// means the system's. The error wraps ErrUntrusted, ErrNameMismatch or
// both, and says why.
//
// The chain may be meant for TLS servers, TLS clients or both: the peer
// that opened the connection presents its certificate as a TLS client,
// and many servers' certificates (Let's Encrypt's since 2025) allow only
// serverAuth. Prosody ignores the purpose altogether
// ("lsec_ignore_purpose"); we still refuse a certificate restricted to
// other purposes, such as e-mail or code signing.
//
// The names that count, in the order RFC 6125 §6 gives:
//   - SRV-ID "_xmpp-server.<domain>" (otherName SRVName), exact;
//   - XmppAddr "<domain>" (otherName id-on-xmppAddr), exact: a JID with
//     a localpart or resource names a user, not a server;
//   - DNS-ID, where "*" may stand for the whole left-most label only:
//     "*.example.org" covers "a.example.org" but neither "example.org" nor
//     "a.b.example.org";
//   - the subject's CN, as a DNS name, only when the certificate has no
//     DNS, SRV, URI or XmppAddr name at all (RFC 6125 §6.4.4).
//
// Names compare in their ASCII (A-label) form without regard to case, so
// an internationalized domain matches however each side spells it.
func VerifyDomain(certs []*x509.Certificate, domain string, roots *x509.CertPool, now time.Time) error {
	if len(certs) == 0 {
		return fmt.Errorf("s2s: no certificate presented for %s: %w", domain, ErrUntrusted)
	}
	leaf := certs[0]
	ids, idsErr := presentedIDs(leaf)
	chainErr := verifyChain(leaf, certs[1:], roots, now, idsErr == nil)
	nameErr := idsErr
	if nameErr == nil {
		nameErr = ids.match(domain)
	}
	switch {
	case chainErr != nil && nameErr != nil:
		return fmt.Errorf("s2s: certificate for %s: %w: %w; and %w", domain, ErrUntrusted, chainErr, nameErr)
	case chainErr != nil:
		return fmt.Errorf("s2s: certificate for %s: %w: %w", domain, ErrUntrusted, chainErr)
	case nameErr != nil:
		return fmt.Errorf("s2s: certificate for %s: %w", domain, nameErr)
	}
	return nil
}

// verifyChain checks the chain, not the name (Go's DNSName check knows
// neither SRV-IDs nor XmppAddrs). sanParsed says that presentedIDs read
// the SubjectAltName extension: Go lists a critical one that holds only
// otherNames as unhandled, which would fail the chain for a certificate
// that names its server with an XmppAddr or SRV-ID only.
func verifyChain(leaf *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, now time.Time, sanParsed bool) error {
	if sanParsed && slices.ContainsFunc(leaf.UnhandledCriticalExtensions, oidSubjectAltName.Equal) {
		c := *leaf
		c.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(c.UnhandledCriticalExtensions), oidSubjectAltName.Equal)
		leaf = &c
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	return err
}

// identities are the names a certificate presents for XMPP.
type identities struct {
	dns, srv, xmppAddr []string
	hasURI             bool
	cn                 string
}

// presentedIDs reads the leaf's names. Go's x509 parses dNSName and URI
// but drops otherName, so the SubjectAltName extension is read again for
// SRVName and XmppAddr.
func presentedIDs(leaf *x509.Certificate) (identities, error) {
	ids := identities{dns: leaf.DNSNames, hasURI: len(leaf.URIs) > 0, cn: leaf.Subject.CommonName}
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		if err := ids.readOtherNames(ext.Value); err != nil {
			return ids, fmt.Errorf("%w: unreadable subjectAltName: %v", ErrNameMismatch, err)
		}
	}
	return ids, nil
}

// readOtherNames walks GeneralNames (RFC 5280 §4.2.1.6) for otherName
// entries, [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }.
func (ids *identities) readOtherNames(der []byte) error {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil {
		return err
	} else if len(rest) > 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence {
		return errors.New("not a SEQUENCE")
	}
	for rest := seq.Bytes; len(rest) > 0; {
		var name asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &name); err != nil {
			return err
		}
		if name.Class != asn1.ClassContextSpecific || name.Tag != 0 {
			continue // not an otherName
		}
		var typeID asn1.ObjectIdentifier
		valueDER, err := asn1.Unmarshal(name.Bytes, &typeID)
		if err != nil {
			return fmt.Errorf("otherName: %w", err)
		}
		var explicit asn1.RawValue
		if _, err := asn1.Unmarshal(valueDER, &explicit); err != nil {
			return fmt.Errorf("otherName %v: %w", typeID, err)
		}
		var value string
		switch {
		case typeID.Equal(oidXmppAddr):
			if _, err := asn1.UnmarshalWithParams(explicit.Bytes, &value, "utf8"); err != nil {
				return fmt.Errorf("xmppAddr: %w", err)
			}
			ids.xmppAddr = append(ids.xmppAddr, value)
		case typeID.Equal(oidSRVName):
			if _, err := asn1.UnmarshalWithParams(explicit.Bytes, &value, "ia5"); err != nil {
				return fmt.Errorf("SRVName: %w", err)
			}
			ids.srv = append(ids.srv, value)
		}
	}
	return nil
}

// match says whether the identities name domain, and if not, what they
// do name.
func (ids identities) match(domain string) error {
	want, err := asciiName(domain)
	if err != nil {
		return fmt.Errorf("%w: %q is not a valid domain name: %v", ErrNameMismatch, domain, err)
	}
	for _, s := range ids.srv {
		if service, name, ok := strings.Cut(s, "."); ok && strings.EqualFold(service+".", srvPrefix) && sameName(name, want) {
			return nil
		}
	}
	for _, x := range ids.xmppAddr {
		if !strings.ContainsAny(x, "@/") && sameName(x, want) {
			return nil
		}
	}
	for _, d := range ids.dns {
		if matchDNS(d, want) {
			return nil
		}
	}
	hasSANs := len(ids.dns) > 0 || len(ids.srv) > 0 || len(ids.xmppAddr) > 0 || ids.hasURI
	if !hasSANs && ids.cn != "" && matchDNS(ids.cn, want) {
		return nil
	}
	return fmt.Errorf("%w: it names %s", ErrNameMismatch, ids)
}

// String lists the names for an error message.
func (ids identities) String() string {
	var names []string
	for _, s := range ids.srv {
		names = append(names, "SRV:"+s)
	}
	for _, x := range ids.xmppAddr {
		names = append(names, "XmppAddr:"+x)
	}
	for _, d := range ids.dns {
		names = append(names, "DNS:"+d)
	}
	if ids.hasURI {
		names = append(names, "URI:…")
	}
	if len(names) == 0 {
		if ids.cn == "" {
			return "nothing"
		}
		return "CN:" + ids.cn
	}
	return strings.Join(names, ", ")
}

// asciiName is name in lower-case A-labels without a trailing dot, the
// form DNS names in certificates take; "" if it is not a valid name.
func asciiName(name string) (string, error) {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
	if err != nil {
		return "", err
	}
	return strings.ToLower(a), nil
}

// sameName compares a presented name with the wanted A-label name.
func sameName(presented, want string) bool {
	p, err := asciiName(presented)
	return err == nil && p != "" && p == want
}

// matchDNS compares a DNS-ID (or CN) with want, allowing "*" as the whole
// left-most label, and only over at least two more labels, so that "*.org"
// covers nothing.
func matchDNS(pattern, want string) bool {
	suffix, wild := strings.CutPrefix(pattern, "*.")
	if !wild {
		return sameName(pattern, want)
	}
	if strings.Count(strings.TrimSuffix(suffix, "."), ".") < 1 {
		return false
	}
	label, rest, ok := strings.Cut(want, ".")
	return ok && label != "" && sameName(suffix, rest)
}
