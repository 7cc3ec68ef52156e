package router_test

import (
	"slices"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// TestStreamFeatureFuncs checks the stream features built per negotiation:
// each for the client's domain, nil and a panicking builder left out, and
// gone once removed.
func TestStreamFeatureFuncs(t *testing.T) {
	r, _ := newRouter(t)
	static := r.AddStreamFeature(router.NewElement("urn:test", "static"))
	defer static.Remove()
	perDomain := r.AddStreamFeatureFunc("a", func(domain string) *router.Element {
		return router.NewElement("urn:test", "domain", "name", domain)
	})
	r.AddStreamFeatureFunc("b", func(string) *router.Element { return nil })
	r.AddStreamFeatureFunc("c", func(string) *router.Element { panic("broken module") })

	names := func(domain string) []string {
		var out []string
		for _, e := range r.StreamFeatures(domain) {
			out = append(out, e.Name.Local+"="+e.Get("name"))
		}
		return out
	}
	for _, tc := range []struct {
		domain string
		want   []string
	}{
		{"example.org", []string{"static=", "domain=example.org"}},
		{"example.net", []string{"static=", "domain=example.net"}},
	} {
		if got := names(tc.domain); !slices.Equal(got, tc.want) {
			t.Errorf("StreamFeatures(%s) = %v; want %v", tc.domain, got, tc.want)
		}
	}
	perDomain.Remove()
	if got := names("example.org"); !slices.Equal(got, []string{"static="}) {
		t.Errorf("after Remove: %v; want only the static feature", got)
	}
}

// TestFeatureGeneration checks that adding and removing a feature each
// change FeatureGeneration, so a value cached from Features is recomputed.
func TestFeatureGeneration(t *testing.T) {
	r, _ := newRouter(t)
	g0 := r.FeatureGeneration()
	reg := r.AddFeature(router.ToServer, "urn:test")
	g1 := r.FeatureGeneration()
	if g1 == g0 || !slices.Contains(r.Features(router.ToServer), "urn:test") {
		t.Fatalf("after AddFeature: generation %d (was %d), features %v", g1, g0, r.Features(router.ToServer))
	}
	reg.Remove()
	if g2 := r.FeatureGeneration(); g2 == g1 || slices.Contains(r.Features(router.ToServer), "urn:test") {
		t.Fatalf("after Remove: generation %d (was %d), features %v", g2, g1, r.Features(router.ToServer))
	}
}

// TestIdentities checks that an identity is listed on its target only,
// once however often added, that adding and removing it change the
// feature generation (the caps ver hashes identities), and that Remove
// takes it away.
func TestIdentities(t *testing.T) {
	r, _ := newRouter(t)
	pep := router.Identity{Category: "pubsub", Type: "pep"}
	g0 := r.FeatureGeneration()
	reg := r.AddIdentity("a", router.ToAccount, pep)
	again := r.AddIdentity("b", router.ToAccount, pep)
	g1 := r.FeatureGeneration()
	if got := r.Identities(router.ToAccount); !slices.Equal(got, []router.Identity{pep}) || g1 == g0 {
		t.Fatalf("identities %v, generation %d (was %d)", got, g1, g0)
	}
	if got := r.Identities(router.ToServer); len(got) != 0 {
		t.Fatalf("server identities %v", got)
	}
	reg.Remove()
	again.Remove()
	if got := r.Identities(router.ToAccount); len(got) != 0 || r.FeatureGeneration() == g1 {
		t.Fatalf("after Remove: %v", got)
	}
}
