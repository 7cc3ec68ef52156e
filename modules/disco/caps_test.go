package disco_test

import (
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/disco"
	"github.com/xmppd/xmppd/router"
)

// referenceVer is XEP-0115 §5.1 written out step by step, apart from
// caps.Ver (whose own tests hold the XEP's examples), so that the
// server's ver is checked independently: it collects
// "category/type/lang/name" identities, features and forms by FORM_TYPE,
// sorts each and hashes the concatenation.
func referenceVer(t *testing.T, q *router.Element) string {
	t.Helper()
	type ident struct{ cat, typ, lang, name string }
	var ids []ident
	var feats []string
	forms := map[string]map[string][]string{} // FORM_TYPE → var → values
	for _, c := range q.Elements() {
		switch c.Name.Local {
		case "identity":
			id := ident{cat: c.Get("category"), typ: c.Get("type"), name: c.Get("name")}
			for _, a := range c.Attr {
				if a.Name.Local == "lang" {
					id.lang = a.Value
				}
			}
			ids = append(ids, id)
		case "feature":
			feats = append(feats, c.Get("var"))
		case "x":
			fields := map[string][]string{}
			for _, f := range c.Elements() {
				for _, v := range f.Elements() {
					fields[f.Get("var")] = append(fields[f.Get("var")], v.Text())
				}
			}
			if ft := fields["FORM_TYPE"]; len(ft) == 1 {
				delete(fields, "FORM_TYPE")
				forms[ft[0]] = fields
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if a.cat != b.cat {
			return a.cat < b.cat
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.lang != b.lang {
			return a.lang < b.lang
		}
		return a.name < b.name
	})
	s := ""
	for _, id := range ids {
		s += id.cat + "/" + id.typ + "/" + id.lang + "/" + id.name + "<"
	}
	sort.Strings(feats)
	for _, f := range feats {
		s += f + "<"
	}
	for _, ft := range slices.Sorted(func(yield func(string) bool) {
		for k := range forms {
			if !yield(k) {
				return
			}
		}
	}) {
		s += ft + "<"
		fields := forms[ft]
		vars := make([]string, 0, len(fields))
		for v := range fields {
			vars = append(vars, v)
		}
		sort.Strings(vars)
		for _, v := range vars {
			s += v + "<"
			values := fields[v]
			sort.Strings(values)
			for _, val := range values {
				s += val + "<"
			}
		}
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func parse(t *testing.T, s string) *router.Element {
	t.Helper()
	e, err := router.ParseElement([]byte(s), router.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return e
}

// capsElement returns the <c/> of stream features, failing the test if there is
// not exactly one.
func capsElement(t *testing.T, features *router.Element) *router.Element {
	t.Helper()
	var found []*router.Element
	for _, e := range features.Elements() {
		if e.Name.Space == disco.NSCaps && e.Name.Local == "c" {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("stream features after login have %d caps elements: %s", len(found), features)
	}
	return found[0]
}

// serverInfo asks the server for disco#info, for node if not "".
func serverInfo(t *testing.T, c *testserver.Raw, node string) *router.Element {
	t.Helper()
	attr := ""
	if node != "" {
		attr = ` node='` + node + `'`
	}
	e, err := c.Request(`<iq type='get' id='i1' to='` + testserver.Domain + `'><query xmlns='` + disco.NSInfo + `'` + attr + `/></iq>`)
	if err != nil {
		t.Fatalf("disco#info: %v", err)
	}
	return e
}

// login logs a new client in and returns its connection and the <c/> it
// saw in the stream features after authentication.
func login(t *testing.T, s *testserver.Server) (*testserver.Raw, *router.Element) {
	t.Helper()
	c := s.LoginRaw("alice", "pw", "")
	return c, capsElement(t, c.Features)
}

// checkCaps checks that the ver a logged-in client sees is the hash of the
// disco#info it gets, plain and for NODE#VER, and returns the ver.
func checkCaps(t *testing.T, s *testserver.Server) string {
	t.Helper()
	c, cc := login(t, s)
	if cc.Get("hash") != "sha-1" || cc.Get("node") != disco.CapsNode {
		t.Errorf("caps %s; want hash sha-1 and node %s", cc, disco.CapsNode)
	}
	ver := cc.Get("ver")
	plain := serverInfo(t, c, "")
	q := plain.Child(disco.NSInfo, "query")
	if plain.Get("type") != "result" || q == nil {
		t.Fatalf("disco#info: %s", plain)
	}
	if !slices.ContainsFunc(q.Elements(), func(e *router.Element) bool { return e.Get("var") == disco.NSCaps }) {
		t.Errorf("disco#info does not advertise %s: %s", disco.NSCaps, q)
	}
	if want := referenceVer(t, q); ver != want {
		t.Errorf("stream feature ver %s; disco#info hashes to %s (%s)", ver, want, q)
	}

	node := disco.CapsNode + "#" + ver
	byNode := serverInfo(t, c, node)
	nq := byNode.Child(disco.NSInfo, "query")
	if byNode.Get("type") != "result" || nq == nil || nq.Get("node") != node {
		t.Fatalf("disco#info for %s: %s", node, byNode)
	}
	if referenceVer(t, nq) != ver || len(nq.Elements()) != len(q.Elements()) {
		t.Errorf("disco#info for %s is %s; want the same as plain %s", node, nq, q)
	}
	for _, other := range []string{disco.CapsNode + "#stale", "urn:other"} {
		e := serverInfo(t, c, other)
		if cond, _ := testserver.ErrorCondition(e); cond != "item-not-found" {
			t.Errorf("disco#info for node %s: %s; want item-not-found", other, e)
		}
	}
	return ver
}

// TestServerCaps checks the server's own caps in the stream features that a
// logged-in client sees against its disco#info, for several module sets,
// and that the ver follows features that modules add and remove.
func TestServerCaps(t *testing.T) {
	vers := map[string]string{}
	for _, tc := range []struct {
		name    string
		modules []string
	}{
		{"disco only", []string{"disco"}},
		{"base", []string{"disco", "ping", "version", "time", "roster"}},
		{"default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) {
				if tc.modules != nil {
					c.Modules = tc.modules
				}
			})
			s.AddUser("alice", "pw")
			ver := checkCaps(t, s)
			for other, v := range vers {
				if v == ver {
					t.Errorf("ver %s is also that of module set %q", ver, other)
				}
			}
			vers[tc.name] = ver

			reg := s.Router.AddFeature(router.ToServer, "urn:example:caps-test")
			added := checkCaps(t, s)
			if added == ver {
				t.Errorf("ver unchanged (%s) after a feature was added", ver)
			}
			reg.Remove()
			if again := checkCaps(t, s); again != ver {
				t.Errorf("ver %s after the feature was removed; want %s as before", again, ver)
			}
		})
	}
}

// TestCapsOnlyWithDisco checks that without the disco module there is no
// caps stream feature: no disco#info, nothing to hash.
func TestCapsOnlyWithDisco(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Modules = []string{"ping"} })
	s.AddUser("alice", "pw")
	c := s.LoginRaw("alice", "pw", "")
	if strings.Contains(c.Features.String(), disco.NSCaps) {
		t.Errorf("caps namespace in features without disco: %s", c.Features)
	}
}
