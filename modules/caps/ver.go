package caps

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xmppd/xmppd/router"
)

// Info is a parsed disco#info answer, what the verification string is
// built from (XEP-0115 §5.1): identities, features and the XEP-0128
// extended forms that have a FORM_TYPE.
type Info struct {
	Identities []Identity
	Features   []string
	Forms      []Form
}

// Identity is one disco#info identity.
type Identity struct {
	Category, Type, Lang, Name string
}

// Form is an XEP-0128 extended information form: its FORM_TYPE and its
// other fields.
type Form struct {
	Type   string
	Fields []Field
	// formTypeValues counts the FORM_TYPE's distinct values; more than
	// one makes the answer ill-formed (§5.4 step 3.5).
	formTypeValues int
}

// Field is a form field with its values.
type Field struct {
	Var    string
	Values []string
}

// ParseInfo reads the <query xmlns='http://jabber.org/protocol/disco#info'/>
// of an answer. It keeps everything; Check says whether the
// answer is well-formed enough to verify, and the Resolver bounds sizes.
// A form is kept only if it has a FORM_TYPE field that is hidden, as
// §5.4 has receivers ignore other forms; a FORM_TYPE with no type
// attribute is accepted too, as some clients leave the type out of
// result forms.
func ParseInfo(q *router.Element) Info {
	var info Info
	for _, c := range q.Elements() {
		switch {
		case c.Name.Space == NSDiscoInfo && c.Name.Local == "identity":
			info.Identities = append(info.Identities, Identity{c.Get("category"), c.Get("type"), xmlLang(c), c.Get("name")})
		case c.Name.Space == NSDiscoInfo && c.Name.Local == "feature":
			info.Features = append(info.Features, c.Get("var"))
		case c.Name.Space == nsData && c.Name.Local == "x":
			if f, ok := parseForm(c); ok {
				info.Forms = append(info.Forms, f)
			}
		}
	}
	return info
}

// parseForm reads an extended information form; false if it has no
// FORM_TYPE to sort it by.
func parseForm(x *router.Element) (Form, bool) {
	var form Form
	found := false
	for _, f := range x.Elements() {
		if f.Name.Space != nsData || f.Name.Local != "field" {
			continue
		}
		values := fieldValues(f)
		if f.Get("var") != "FORM_TYPE" {
			form.Fields = append(form.Fields, Field{Var: f.Get("var"), Values: values})
			continue
		}
		if found || len(values) == 0 || (f.Get("type") != "" && f.Get("type") != "hidden") {
			continue
		}
		found = true
		form.Type = values[0]
		slices.Sort(values)
		form.formTypeValues = len(slices.Compact(values))
	}
	return form, found
}

func fieldValues(field *router.Element) []string {
	var out []string
	for _, v := range field.Elements() {
		if v.Name.Space == nsData && v.Name.Local == "value" {
			out = append(out, v.Text())
		}
	}
	return out
}

// xmlLang is an element's xml:lang, "" if it has none.
func xmlLang(e *router.Element) string {
	for _, a := range e.Attr {
		if a.Name.Local == "lang" && (a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/XML/1998/namespace") {
			return a.Value
		}
	}
	return ""
}

// ErrIllFormed is returned by Check for an answer that XEP-0115 §5.4
// says must not be verified: duplicate identities, features or forms.
var ErrIllFormed = errors.New("caps: ill-formed disco#info")

// Check tells whether info may be verified (XEP-0115 §5.4 step 3): no
// two identities with the same category/type/lang/name, no feature twice,
// no two forms with the same FORM_TYPE, no FORM_TYPE with two different
// values.
func (info Info) Check() error {
	ids := make(map[Identity]bool, len(info.Identities))
	for _, id := range info.Identities {
		if ids[id] {
			return fmt.Errorf("%w: identity %s/%s/%s/%s twice", ErrIllFormed, id.Category, id.Type, id.Lang, id.Name)
		}
		ids[id] = true
	}
	feats := make(map[string]bool, len(info.Features))
	for _, f := range info.Features {
		if feats[f] {
			return fmt.Errorf("%w: feature %s twice", ErrIllFormed, f)
		}
		feats[f] = true
	}
	forms := make(map[string]bool, len(info.Forms))
	for _, f := range info.Forms {
		if forms[f.Type] || f.formTypeValues > 1 {
			return fmt.Errorf("%w: form %s twice or with several FORM_TYPE values", ErrIllFormed, f.Type)
		}
		forms[f.Type] = true
	}
	return nil
}

// VerificationString is S of XEP-0115 §5.1: identities sorted by
// category, type, lang (and name), each as category/type/lang/name, then
// features sorted, then the forms sorted by FORM_TYPE with their fields
// sorted by var and each field's values sorted, every part followed by
// '<'. Sorting is by octets ("i;octet"). The XEP prescribes no escaping:
// values go in as they are, so a '&lt;' in a name stays those four
// characters and a '<' stays one.
func (info Info) VerificationString() string {
	ids := slices.Clone(info.Identities)
	slices.SortFunc(ids, func(a, b Identity) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Type, b.Type),
			strings.Compare(a.Lang, b.Lang), strings.Compare(a.Name, b.Name))
	})
	features := slices.Clone(info.Features)
	slices.Sort(features)
	forms := make([]formPart, len(info.Forms))
	for i, f := range info.Forms {
		forms[i] = formPart{f.Type, f.part()}
	}
	// Forms with the same FORM_TYPE (ill-formed, §5.4) are ordered by
	// content, so that S never depends on the order of the answer.
	slices.SortFunc(forms, func(a, b formPart) int { return cmp.Or(strings.Compare(a.typ, b.typ), strings.Compare(a.s, b.s)) })

	var s strings.Builder
	add := func(parts ...string) {
		for _, p := range parts {
			s.WriteString(p)
		}
		s.WriteByte('<')
	}
	for _, id := range ids {
		add(id.Category, "/", id.Type, "/", id.Lang, "/", id.Name)
	}
	for _, f := range features {
		add(f)
	}
	for _, f := range forms {
		s.WriteString(f.s)
	}
	return s.String()
}

// formPart is a form's part of S, with its FORM_TYPE to sort by.
type formPart struct{ typ, s string }

// part is the form's part of S (XEP-0115 §5.1 step 7): FORM_TYPE, then
// each field by var with its values sorted. Fields with the same var
// (which XEP-0004 does not allow) are ordered by their values.
func (form Form) part() string {
	fields := make([]Field, len(form.Fields))
	for i, f := range form.Fields {
		values := slices.Clone(f.Values)
		slices.Sort(values)
		fields[i] = Field{Var: f.Var, Values: values}
	}
	slices.SortFunc(fields, func(a, b Field) int {
		return cmp.Or(strings.Compare(a.Var, b.Var), slices.Compare(a.Values, b.Values))
	})
	var s strings.Builder
	add := func(p string) {
		s.WriteString(p)
		s.WriteByte('<')
	}
	add(form.Type)
	for _, f := range fields {
		add(f.Var)
		for _, v := range f.Values {
			add(v)
		}
	}
	return s.String()
}

// Hash names of the IANA registry that XEP-0115 §8.1 refers to, those
// the Go standard library implements. SHA-1 is mandatory; MD5 and others
// are not trusted.
const (
	SHA1   = "sha-1"
	SHA224 = "sha-224"
	SHA256 = "sha-256"
	SHA384 = "sha-384"
	SHA512 = "sha-512"
)

// digest hashes s with the named hash; false for a hash this package does
// not trust.
func digest(hash string, s []byte) ([]byte, bool) {
	switch hash {
	case SHA1:
		d := sha1.Sum(s)
		return d[:], true
	case SHA224:
		d := sha256.Sum224(s)
		return d[:], true
	case SHA256:
		d := sha256.Sum256(s)
		return d[:], true
	case SHA384:
		d := sha512.Sum384(s)
		return d[:], true
	case SHA512:
		d := sha512.Sum512(s)
		return d[:], true
	}
	return nil, false
}

// Supported tells whether ver strings made with hash can be verified.
func Supported(hash string) bool {
	_, ok := digest(hash, nil)
	return ok
}

// Ver is the SHA-1 verification string of info (XEP-0115 §5.1), what a
// <c hash='sha-1'/> carries.
func Ver(info Info) string {
	v, _ := VerHash(info, SHA1)
	return v
}

// VerHash is the verification string of info with the named hash,
// base64 with padding; false if the hash is not one of Supported.
func VerHash(info Info, hash string) (string, bool) {
	d, ok := digest(hash, []byte(info.VerificationString()))
	if !ok {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(d), true
}

// plausible tells whether ver could be the output of hash: base64 of a
// digest of the right length. Anything else can never verify, so the
// Resolver does not spend a shared query on it.
func plausible(hash, ver string) bool {
	d, ok := digest(hash, nil)
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(ver)
	return err == nil && len(b) == len(d)
}
