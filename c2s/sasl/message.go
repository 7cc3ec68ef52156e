package sasl

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxMessage bounds one client message. Real ones are a few hundred bytes;
// the bound keeps a hostile client from making us decode and look up
// megabyte-long names.
const maxMessage = 8 << 10

// checkMessage applies what holds for every SCRAM message: a bounded size,
// UTF-8, and no NUL (RFC 5802 §7: value-char excludes it).
func checkMessage(in []byte) (string, error) {
	if len(in) == 0 || len(in) > maxMessage {
		return "", fmt.Errorf("%w: message of %d bytes", ErrMalformed, len(in))
	}
	msg := string(in)
	if !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 {
		return "", fmt.Errorf("%w: message is not UTF-8 without NUL", ErrMalformed)
	}
	return msg, nil
}

func validUTF8(s string) bool { return utf8.ValidString(s) }

// decodeSaslname undoes RFC 5802 §5.1's escaping of ',' as "=2C" and '=' as
// "=3D". Any other '=' is an error: accepting it would let two spellings name
// one user.
func decodeSaslname(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty name")
	}
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1 : min(i+3, len(s))] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("bad escape at byte %d", i)
		}
		i += 2
	}
	return b.String(), nil
}

// validNonce checks RFC 5802 §7's printable: 0x21-0x7E except ','.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validBindingName checks RFC 5802 §7's cb-name: 1*(ALPHA / DIGIT / "." / "-").
func validBindingName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// checkExtensions checks optional attributes (RFC 5802 §7: attr-val). We
// know none and so ignore them, but "m" is the mandatory-extension marker
// and RFC 5802 §5.1 says its presence MUST fail authentication.
func checkExtensions(attrs []string) error {
	for _, a := range attrs {
		if len(a) < 3 || !isAlpha(a[0]) || a[1] != '=' {
			return fmt.Errorf("%w: bad attribute %q", ErrMalformed, a)
		}
		if a[0] == 'm' {
			return fmt.Errorf("%w: unsupported mandatory extension", ErrMalformed)
		}
	}
	return nil
}
