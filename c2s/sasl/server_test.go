package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/storage"
)

// accounts is a Lookup over a fixed set of users with one password each.
type accounts map[string]string

func (a accounts) lookup(t testing.TB, mech string) Lookup {
	f, _, _ := familyOf(mech)
	creds := map[string]storage.Credential{}
	for user, pw := range a {
		salt := fmt.Appendf(nil, "%-16.16s", "salt:"+user) // as long as real salts
		creds[user] = mustDerive(t, f.Name, pw, salt, 4096)
	}
	return func(authcid string) (storage.Credential, error) {
		if c, ok := creds[authcid]; ok {
			return c, nil
		}
		return storage.Credential{}, fmt.Errorf("user %q: %w", authcid, storage.ErrNotFound)
	}
}

func newTestServer(t testing.TB, mech string, lookup Lookup, cb ChannelBinding) *Server {
	t.Helper()
	s, err := NewServer(mech, lookup, cb)
	if err != nil {
		t.Fatal(err)
	}
	s.Decoy = Decoy{Secret: []byte("test"), Iterations: 4096}
	return s
}

func TestRFCExamples(t *testing.T) {
	tests := []struct {
		rfc, mech                string
		salt                     []byte
		serverNonce              string
		clientFirst, serverFirst string
		clientFinal, serverFinal string
	}{
		{
			rfc:         "RFC 5802 §5",
			mech:        SHA1,
			salt:        rfc5802Salt,
			serverNonce: "3rfcNHYJY1ZVvWVs7j",
			clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			rfc:         "RFC 7677 §3",
			mech:        SHA256,
			salt:        rfc7677Salt,
			serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.rfc, func(t *testing.T) {
			cred := mustDerive(t, tt.mech, "pencil", tt.salt, 4096)
			var looked string
			s := newTestServer(t, tt.mech, func(authcid string) (storage.Credential, error) {
				looked = authcid
				return cred, nil
			}, nil)
			s.newNonce = func() string { return tt.serverNonce }

			out, done, err := s.Step([]byte(tt.clientFirst))
			if err != nil || done || string(out) != tt.serverFirst {
				t.Fatalf("client-first: got %q, done=%v, %v; want %q", out, done, err, tt.serverFirst)
			}
			if looked != "user" {
				t.Errorf("looked up %q, want %q", looked, "user")
			}
			if s.Username() != "" {
				t.Errorf("Username() = %q before success", s.Username())
			}
			out, done, err = s.Step([]byte(tt.clientFinal))
			if err != nil || !done || string(out) != tt.serverFinal {
				t.Fatalf("client-final: got %q, done=%v, %v; want %q", out, done, err, tt.serverFinal)
			}
			if s.Username() != "user" || s.Authzid() != "" || s.ChannelBindingType() != "" {
				t.Errorf("identity = %q, %q, %q; want user and no authzid or binding",
					s.Username(), s.Authzid(), s.ChannelBindingType())
			}
			if _, _, err := s.Step([]byte(tt.clientFinal)); !errors.Is(err, ErrMalformed) {
				t.Errorf("third step: %v, want ErrMalformed", err)
			}
		})
	}
}

// TestMelliumClient logs in with mellium.im/sasl's client, an implementation
// written independently of ours, with and without channel binding over real
// TLS 1.2 and 1.3 connections.
func TestMelliumClient(t *testing.T) {
	users := accounts{"juliet": "r0m30myr0m30"}
	mechs := map[string]sasl.Mechanism{
		SHA1: sasl.ScramSha1, SHA1Plus: sasl.ScramSha1Plus,
		SHA256: sasl.ScramSha256, SHA256Plus: sasl.ScramSha256Plus,
	}
	tests := []struct {
		name        string
		mech        string
		tlsVersion  uint16 // 0: no TLS
		user, pass  string
		authzid     string
		offered     []string // what the client saw in <mechanisms/>
		plusOffered bool
		mitm        bool // client and server are on different TLS connections
		wantErr     error
		wantCB      string
	}{
		{name: "SHA-1", mech: SHA1, user: "juliet", pass: "r0m30myr0m30"},
		{name: "SHA-256", mech: SHA256, user: "juliet", pass: "r0m30myr0m30"},
		{name: "SHA-256 with authzid", mech: SHA256, user: "juliet", pass: "r0m30myr0m30", authzid: "juliet@example.net"},
		{name: "SHA-256 over TLS 1.3, PLUS offered", mech: SHA256, tlsVersion: tls.VersionTLS13,
			user: "juliet", pass: "r0m30myr0m30", offered: []string{SHA256, SHA256Plus}, plusOffered: true},
		{name: "SHA-1-PLUS TLS 1.3", mech: SHA1Plus, tlsVersion: tls.VersionTLS13, user: "juliet", pass: "r0m30myr0m30",
			offered: []string{SHA1Plus}, plusOffered: true, wantCB: TLSExporter},
		{name: "SHA-256-PLUS TLS 1.3", mech: SHA256Plus, tlsVersion: tls.VersionTLS13, user: "juliet", pass: "r0m30myr0m30",
			offered: []string{SHA256Plus}, plusOffered: true, wantCB: TLSExporter},
		{name: "SHA-1-PLUS TLS 1.2", mech: SHA1Plus, tlsVersion: tls.VersionTLS12, user: "juliet", pass: "r0m30myr0m30",
			offered: []string{SHA1Plus}, plusOffered: true, wantCB: TLSUnique},
		{name: "SHA-256-PLUS TLS 1.2", mech: SHA256Plus, tlsVersion: tls.VersionTLS12, user: "juliet", pass: "r0m30myr0m30",
			offered: []string{SHA256Plus}, plusOffered: true, wantCB: TLSUnique},
		{name: "SHA-256-PLUS TLS 1.3 with authzid", mech: SHA256Plus, tlsVersion: tls.VersionTLS13, user: "juliet",
			pass: "r0m30myr0m30", authzid: "juliet@example.net", offered: []string{SHA256Plus}, plusOffered: true, wantCB: TLSExporter},

		{name: "wrong password", mech: SHA256, user: "juliet", pass: "romeo", wantErr: ErrNotAuthorized},
		{name: "unknown user", mech: SHA256, user: "romeo", pass: "r0m30myr0m30", wantErr: ErrNotAuthorized},
		{name: "wrong password PLUS", mech: SHA256Plus, tlsVersion: tls.VersionTLS13, user: "juliet", pass: "romeo",
			offered: []string{SHA256Plus}, plusOffered: true, wantErr: ErrNotAuthorized},
		{name: "unknown user PLUS", mech: SHA1Plus, tlsVersion: tls.VersionTLS12, user: "romeo", pass: "r0m30myr0m30",
			offered: []string{SHA1Plus}, plusOffered: true, wantErr: ErrNotAuthorized},
		// The mellium client sends "y" under -PLUS when it did not see the
		// -PLUS mechanism offered.
		{name: "PLUS chosen with y flag", mech: SHA256Plus, tlsVersion: tls.VersionTLS13, user: "juliet",
			pass: "r0m30myr0m30", plusOffered: true, wantErr: ErrChannelBinding},
		{name: "man in the middle TLS 1.3", mech: SHA256Plus, tlsVersion: tls.VersionTLS13, user: "juliet",
			pass: "r0m30myr0m30", offered: []string{SHA256Plus}, plusOffered: true, mitm: true, wantErr: ErrChannelBinding},
		{name: "man in the middle TLS 1.2", mech: SHA1Plus, tlsVersion: tls.VersionTLS12, user: "juliet",
			pass: "r0m30myr0m30", offered: []string{SHA1Plus}, plusOffered: true, mitm: true, wantErr: ErrChannelBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []sasl.Option{
				sasl.Credentials(func() (user, pass, authzid []byte) {
					return []byte(tt.user), []byte(tt.pass), []byte(tt.authzid)
				}),
				sasl.RemoteMechanisms(tt.offered...),
			}
			var cb ChannelBinding
			if tt.tlsVersion != 0 {
				clientState, serverState, leaf := tlsPair(t, tt.tlsVersion)
				if tt.mitm {
					clientState, _, _ = tlsPair(t, tt.tlsVersion)
				}
				opts = append(opts, sasl.TLSState(clientState))
				cb = TLSBinding(&serverState, leaf)
			}
			client := sasl.NewClient(mechs[tt.mech], opts...)
			s := newTestServer(t, tt.mech, users.lookup(t, tt.mech), cb)
			s.PlusOffered = tt.plusOffered

			err := runMellium(client, s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("login: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s.Username() != tt.user || s.Authzid() != tt.authzid || s.ChannelBindingType() != tt.wantCB {
				t.Errorf("got user %q, authzid %q, binding %q; want %q, %q, %q",
					s.Username(), s.Authzid(), s.ChannelBindingType(), tt.user, tt.authzid, tt.wantCB)
			}
		})
	}
}

// runMellium runs a whole conversation. Server errors are returned as they
// are; client errors are wrapped so that they match no sentinel.
func runMellium(c *sasl.Negotiator, s *Server) error {
	_, clientFirst, err := c.Step(nil)
	if err != nil {
		return fmt.Errorf("client start: %v", err)
	}
	serverFirst, done, err := s.Step(clientFirst)
	if err != nil {
		return err
	}
	if done {
		return errors.New("server done after client-first")
	}
	_, clientFinal, err := c.Step(serverFirst)
	if err != nil {
		return fmt.Errorf("client on server-first: %v", err)
	}
	serverFinal, done, err := s.Step(clientFinal)
	if err != nil {
		return err
	}
	if !done {
		return errors.New("server not done after client-final")
	}
	// The client checks the server's signature: proof that we know ServerKey.
	if _, _, err := c.Step(serverFinal); err != nil {
		return fmt.Errorf("client on server-final: %v", err)
	}
	return nil
}

// testClient is a minimal SCRAM client that can be told to misbehave.
type testClient struct {
	mech      string
	user      string // already escaped
	pass      string
	header    string // GS2 header sent in client-first
	cbHeader  string // GS2 header put into c=; "" means header
	cbData    []byte // binding data the client claims to see
	nonce     string
	nonceEdit func(string) string // changes the combined nonce in client-final
}

func (c testClient) first() string {
	return c.header + "n=" + c.user + ",r=" + c.nonce
}

func (c testClient) final(t testing.TB, serverFirst string) string {
	t.Helper()
	f, _, _ := familyOf(c.mech)
	var nonce, salt string
	var iterations int
	for _, attr := range strings.Split(serverFirst, ",") {
		switch attr[:2] {
		case "r=":
			nonce = attr[2:]
		case "s=":
			salt = attr[2:]
		case "i=":
			iterations, _ = strconv.Atoi(attr[2:])
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		t.Fatalf("server nonce %q does not extend ours %q", nonce, c.nonce)
	}
	if c.nonceEdit != nil {
		nonce = c.nonceEdit(nonce)
	}
	cbHeader := c.cbHeader
	if cbHeader == "" {
		cbHeader = c.header
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(cbHeader), c.cbData...)) + ",r=" + nonce
	authMessage := []byte(c.first()[len(c.header):] + "," + serverFirst + "," + withoutProof)

	salted, err := pbkdf2.Key(f.New, c.pass, mustBase64(salt), iterations, f.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key, msg []byte) []byte {
		m := hmac.New(f.New, key)
		m.Write(msg)
		return m.Sum(nil)
	}
	clientKey := mac(salted, []byte("Client Key"))
	h := f.New()
	h.Write(clientKey)
	proof := mac(h.Sum(nil), authMessage)
	subtle.XORBytes(proof, proof, clientKey)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

// fakeBinding offers tls-exporter and tls-server-end-point with fixed data.
func fakeBinding(cbType string) ([]byte, error) {
	switch cbType {
	case TLSExporter:
		return []byte("exporter data.................."), nil
	case TLSServerEndPoint:
		return []byte("end point hash................."), nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedBinding, cbType)
}

// TestGS2 covers RFC 5802 §6: which channel binding flag goes with which
// mechanism, the downgrade check, and the c= comparison.
func TestGS2(t *testing.T) {
	exporter, _ := fakeBinding(TLSExporter)
	endPoint, _ := fakeBinding(TLSServerEndPoint)
	tests := []struct {
		name        string
		mech        string
		plusOffered bool
		cb          ChannelBinding
		client      testClient // mech, user, pass and nonce are filled in
		wantFirst   error      // from client-first
		wantFinal   error      // from client-final
		wantCB      string
		wantAuthzid string
	}{
		{name: "n without TLS", mech: SHA256, client: testClient{header: "n,,"}},
		{name: "n with PLUS offered", mech: SHA256, plusOffered: true, cb: fakeBinding, client: testClient{header: "n,,"}},
		{name: "y when PLUS not offered", mech: SHA256, cb: fakeBinding, client: testClient{header: "y,,"}},
		{name: "y without TLS", mech: SHA1, client: testClient{header: "y,,"}},
		{name: "y when PLUS offered is a downgrade", mech: SHA256, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "y,,"}, wantFirst: ErrChannelBinding},
		{name: "p without PLUS", mech: SHA256, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-exporter,,", cbData: exporter}, wantFirst: ErrChannelBinding},
		{name: "n under PLUS", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "n,,"}, wantFirst: ErrChannelBinding},
		{name: "y under PLUS", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "y,,"}, wantFirst: ErrChannelBinding},
		{name: "tls-exporter", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-exporter,,", cbData: exporter}, wantCB: TLSExporter},
		{name: "tls-server-end-point", mech: SHA1Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-server-end-point,,", cbData: endPoint}, wantCB: TLSServerEndPoint},
		{name: "binding with authzid", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-exporter,a=ju=2Cliet=3D,", cbData: exporter},
			wantCB: TLSExporter, wantAuthzid: "ju,liet="},
		{name: "unsupported type", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-unique,,", cbData: exporter}, wantFirst: ErrChannelBinding},
		{name: "PLUS without TLS", mech: SHA256Plus, plusOffered: true,
			client: testClient{header: "p=tls-exporter,,", cbData: exporter}, wantFirst: ErrChannelBinding},
		{name: "bad type name", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls_exporter,,"}, wantFirst: ErrMalformed},
		{name: "wrong binding data", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-exporter,,", cbData: endPoint}, wantFinal: ErrChannelBinding},
		{name: "binding data left out", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client: testClient{header: "p=tls-exporter,,"}, wantFinal: ErrChannelBinding},
		{name: "c= names another type", mech: SHA256Plus, plusOffered: true, cb: fakeBinding,
			client:    testClient{header: "p=tls-exporter,,", cbHeader: "p=tls-server-end-point,,", cbData: exporter},
			wantFinal: ErrChannelBinding},
		{name: "c= header differs", mech: SHA256, cb: fakeBinding,
			client: testClient{header: "y,,", cbHeader: "n,,"}, wantFinal: ErrChannelBinding},
		{name: "c= drops the authzid", mech: SHA256,
			client: testClient{header: "n,a=juliet,", cbHeader: "n,,"}, wantFinal: ErrChannelBinding},
		{name: "authzid escaped", mech: SHA256, client: testClient{header: "n,a=a=3Db=2Cc,"}, wantAuthzid: "a=b,c"},
		{name: "authzid with a bad escape", mech: SHA256,
			client: testClient{header: "n,a=bad=41,"}, wantFirst: ErrInvalidAuthzid},
		{name: "authzid empty", mech: SHA256, client: testClient{header: "n,a=,"}, wantFirst: ErrInvalidAuthzid},
		{name: "nonce changed", mech: SHA256,
			client:    testClient{header: "n,,", nonceEdit: func(n string) string { return n + "x" }},
			wantFinal: ErrNotAuthorized},
		{name: "client nonce only", mech: SHA256,
			client:    testClient{header: "n,,", nonceEdit: func(string) string { return "fyko+d2lbbFgONRv9qkxdawL" }},
			wantFinal: ErrNotAuthorized},
		{name: "escaped username", mech: SHA256, client: testClient{header: "n,,", user: "o=2Cbrien=3D"}},
	}
	users := accounts{"juliet": "pencil", "o,brien=": "pencil"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			c.mech, c.pass, c.nonce = tt.mech, "pencil", "fyko+d2lbbFgONRv9qkxdawL"
			if c.user == "" {
				c.user = "juliet"
			}
			s := newTestServer(t, tt.mech, users.lookup(t, tt.mech), tt.cb)
			s.PlusOffered = tt.plusOffered
			serverFirst, _, err := s.Step([]byte(c.first()))
			if !errors.Is(err, tt.wantFirst) || (tt.wantFirst == nil && err != nil) {
				t.Fatalf("client-first: %v, want %v", err, tt.wantFirst)
			}
			if err != nil {
				return
			}
			_, done, err := s.Step([]byte(c.final(t, string(serverFirst))))
			if !errors.Is(err, tt.wantFinal) || (tt.wantFinal == nil && err != nil) {
				t.Fatalf("client-final: %v, want %v", err, tt.wantFinal)
			}
			if err != nil {
				return
			}
			if !done || s.ChannelBindingType() != tt.wantCB || s.Authzid() != tt.wantAuthzid {
				t.Errorf("done=%v, binding %q, authzid %q; want binding %q, authzid %q",
					done, s.ChannelBindingType(), s.Authzid(), tt.wantCB, tt.wantAuthzid)
			}
		})
	}
}

func TestMalformedClientFirst(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{"n", ErrMalformed},
		{"n,", ErrMalformed},
		{"n,,", ErrMalformed},
		{"x,,n=user,r=abc", ErrMalformed},
		{"nn,,n=user,r=abc", ErrMalformed},
		{"p=,,n=user,r=abc", ErrMalformed},
		{"n,b=x,n=user,r=abc", ErrMalformed},
		{"n,,n=user", ErrMalformed},
		{"n,,r=abc,n=user", ErrMalformed},
		{"n,,n=,r=abc", ErrMalformed},
		{"n,,n=user,r=", ErrMalformed},
		{"n,,n=user,r=a b", ErrMalformed},
		{"n,,n=user,r=abc\x7f", ErrMalformed},
		{"n,,n=us=2Xer,r=abc", ErrMalformed},
		{"n,,n=us=2cer,r=abc", ErrMalformed},
		{"n,,n=user=,r=abc", ErrMalformed},
		{"n,,n=user=3,r=abc", ErrMalformed},
		{"n,,n=us\x00er,r=abc", ErrMalformed},
		{"n,,n=\xff\xfe,r=abc", ErrMalformed},
		{"n,,m=ext,n=user,r=abc", ErrMalformed},
		{"n,,n=user,r=abc,m=ext", ErrMalformed},
		{"n,,n=user,r=abc,1=x", ErrMalformed},
		{"n,,n=user,r=abc,x", ErrMalformed},
		{"n,,n=user,r=abc,x=", ErrMalformed},
		{"n,,n=user,r=abc,", ErrMalformed},
		{"n,,n=" + strings.Repeat("a", maxMessage) + ",r=abc", ErrMalformed},
		{"n,,n=user,r=abc,x=unknown-extension", nil},
	}
	lookup := accounts{"user": "pencil"}.lookup(t, SHA256)
	for _, tt := range tests {
		s := newTestServer(t, SHA256, lookup, nil)
		out, done, err := s.Step([]byte(tt.in))
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Step(%q) = %q, %v, %v; want %v", tt.in, out, done, err, tt.want)
		}
		if err != nil {
			if _, _, again := s.Step([]byte("c=biws,r=abc,p=AAAA")); again == nil {
				t.Errorf("Step after failing on %q succeeded", tt.in)
			}
		}
	}
}

func TestMalformedClientFinal(t *testing.T) {
	const first = "n,,n=user,r=abc"
	const nonce = "abcSERVER"
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{"c=biws", ErrMalformed},
		{"c=biws,r=" + nonce, ErrMalformed},
		{"r=" + nonce + ",c=biws,p=" + proof, ErrMalformed},
		{"c=biws,p=" + proof, ErrMalformed},
		{"c=!!!!,r=" + nonce + ",p=" + proof, ErrMalformed},
		{"c=biw,r=" + nonce + ",p=" + proof, ErrMalformed},
		{"c=biws,r=" + nonce + ",p=not base64", ErrMalformed},
		{"c=biws,r=" + nonce + ",p=" + proof[:len(proof)-4], ErrMalformed},
		{"c=biws,r=" + nonce + ",p=" + proof + ",x=1", ErrMalformed},
		{"c=biws,r=" + nonce + ",m=x,p=" + proof, ErrMalformed},
		{"c=biws,r=" + nonce + ",=x,p=" + proof, ErrMalformed},
		{"c=biws,r=" + nonce + ",p=" + proof + "\x00", ErrMalformed},
		{"c=biws,r=" + nonce + "X,p=" + proof, ErrNotAuthorized},
		{"c=biws,r=" + nonce + ",p=" + proof, ErrNotAuthorized},
		{"c=biws,r=" + nonce + ",x=ignored,p=" + proof, ErrNotAuthorized},
		{"c=eSws,r=" + nonce + ",p=" + proof, ErrChannelBinding},
	}
	lookup := accounts{"user": "pencil"}.lookup(t, SHA256)
	for _, tt := range tests {
		s := newTestServer(t, SHA256, lookup, nil)
		s.newNonce = func() string { return "SERVER" }
		if _, _, err := s.Step([]byte(first)); err != nil {
			t.Fatal(err)
		}
		out, done, err := s.Step([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("Step(%q) = %q, %v, %v; want %v", tt.in, out, done, err, tt.want)
		}
	}
}

// TestUnknownUser checks that a missing account runs the same conversation
// as an existing one and fails the same way as a wrong password.
func TestUnknownUser(t *testing.T) {
	users := accounts{"juliet": "pencil"}
	lookup := users.lookup(t, SHA256)
	serverFirst := func(user string, d Decoy) string {
		s := newTestServer(t, SHA256, lookup, nil)
		s.Decoy = d
		s.newNonce = func() string { return "SERVER" }
		out, _, err := s.Step([]byte("n,,n=" + user + ",r=abc"))
		if err != nil {
			t.Fatalf("client-first for %q: %v", user, err)
		}
		return string(out)
	}
	saltOf := func(serverFirst string) string { return strings.Split(serverFirst, ",")[1] }
	d := Decoy{Secret: []byte("test"), Iterations: 4096}

	real, romeo := serverFirst("juliet", d), serverFirst("romeo", d)
	if len(romeo) != len(real) || !strings.HasSuffix(romeo, ",i=4096") {
		t.Errorf("decoy server-first %q does not look like a real one, %q", romeo, real)
	}
	if saltOf(serverFirst("romeo", d)) != saltOf(romeo) || saltOf(serverFirst("Romeo", d)) != saltOf(romeo) {
		t.Error("the decoy salt changes between attempts")
	}
	if saltOf(serverFirst("mercutio", d)) == saltOf(romeo) {
		t.Error("two missing users share a salt")
	}

	for _, user := range []string{"juliet", "romeo"} {
		c := testClient{mech: SHA256, user: user, pass: "not the password", header: "n,,", nonce: "abc"}
		s := newTestServer(t, SHA256, lookup, nil)
		first, _, err := s.Step([]byte(c.first()))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Step([]byte(c.final(t, string(first)))); !errors.Is(err, ErrNotAuthorized) {
			t.Errorf("%s: %v, want ErrNotAuthorized", user, err)
		}
	}
	// Even the right password for some other account cannot unlock a decoy.
	c := testClient{mech: SHA256, user: "romeo", pass: "pencil", header: "n,,", nonce: "abc"}
	s := newTestServer(t, SHA256, lookup, nil)
	first, _, _ := s.Step([]byte(c.first()))
	if _, _, err := s.Step([]byte(c.final(t, string(first)))); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("decoy: %v, want ErrNotAuthorized", err)
	}
}

func TestStoreProblems(t *testing.T) {
	good := mustDerive(t, SHA256, "pencil", rfc7677Salt, 4096)
	sha1 := mustDerive(t, SHA1, "pencil", rfc5802Salt, 4096)
	short := good
	short.StoredKey = short.StoredKey[:20]
	noIter := good
	noIter.Iterations = 0
	tests := []struct {
		name string
		cred storage.Credential
		err  error
	}{
		{"store down", storage.Credential{}, errors.New("connection refused")},
		{"credential for another family", sha1, nil},
		{"key of the wrong size", short, nil},
		{"no iterations", noIter, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, SHA256, func(string) (storage.Credential, error) { return tt.cred, tt.err }, nil)
			_, _, err := s.Step([]byte("n,,n=user,r=abc"))
			if !errors.Is(err, ErrTemporary) || Condition(err) != "temporary-auth-failure" {
				t.Errorf("got %v, want ErrTemporary", err)
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	lookup := accounts{}.lookup(t, SHA256)
	for _, mech := range []string{SHA1, SHA1Plus, SHA256, SHA256Plus} {
		if _, err := NewServer(mech, lookup, nil); err != nil {
			t.Errorf("NewServer(%q): %v", mech, err)
		}
	}
	for _, mech := range []string{"", "PLAIN", "SCRAM-SHA-512", "scram-sha-1", "SCRAM-SHA-256-PLUS-PLUS", "-PLUS"} {
		if _, err := NewServer(mech, lookup, nil); !errors.Is(err, ErrInvalidMechanism) {
			t.Errorf("NewServer(%q): %v, want ErrInvalidMechanism", mech, err)
		}
	}
	if _, err := NewServer(SHA256, nil, nil); err == nil {
		t.Error("NewServer accepts a nil lookup")
	}
}
