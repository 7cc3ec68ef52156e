package web_test

import (
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// hostMeta fetches both host-meta documents and returns the WebSocket
// link's href of each (XRD, JSON).
func hostMeta(t *testing.T, base string, header map[string]string) (xrd, js string) {
	t.Helper()
	resp := fetch(t, base+"/.well-known/host-meta", header)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xrd+xml") {
		t.Errorf("host-meta Content-Type %q", ct)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("host-meta without CORS for web clients")
	}
	var doc struct {
		XMLName xml.Name `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"Link"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("host-meta is not an XRD: %v", err)
	}
	for _, l := range doc.Links {
		if l.Rel == "urn:xmpp:alt-connections:websocket" {
			xrd = l.Href
		}
	}

	resp = fetch(t, base+"/.well-known/host-meta.json", header)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("host-meta.json Content-Type %q", ct)
	}
	var jdoc struct {
		Links []struct {
			Rel  string `json:"rel"`
			Href string `json:"href"`
		} `json:"links"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jdoc); err != nil {
		t.Fatalf("host-meta.json: %v", err)
	}
	for _, l := range jdoc.Links {
		if l.Rel == "urn:xmpp:alt-connections:websocket" {
			js = l.Href
		}
	}
	return xrd, js
}

// fetch GETs url with extra headers.
func fetch(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHostMeta: XEP-0156 lists the WebSocket endpoint as the client
// reached it, as a trusted proxy says, or at public_url.
func TestHostMeta(t *testing.T) {
	plain := testserver.Start(t, func(c *config.Config) { c.Web.TrustedProxies = []string{"127.0.0.1"} })
	public := testserver.Start(t, func(c *config.Config) { c.Web.PublicURL = "https://chat.example.org/xmpp/" })
	off := testserver.Start(t, func(c *config.Config) { c.Web.WebSocket.Disabled = true })
	tests := []struct {
		name   string
		base   string
		header map[string]string
		want   string
	}{
		{name: "direct", base: plain.HTTPURL(), want: "ws://" + strings.TrimPrefix(plain.HTTPURL(), "http://") + "/xmpp-websocket"},
		{name: "through a trusted proxy", base: plain.HTTPURL(),
			header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "xmpp.example.net"},
			want:   "wss://xmpp.example.net/xmpp-websocket"},
		{name: "public URL", base: public.HTTPURL(), header: map[string]string{"X-Forwarded-Host": "ignored.example"},
			want: "wss://chat.example.org/xmpp/xmpp-websocket"},
		{name: "WebSocket disabled", base: off.HTTPURL(), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xrd, js := hostMeta(t, tt.base, tt.header)
			if xrd != tt.want || js != tt.want {
				t.Errorf("websocket link: XRD %q, JSON %q, want %q", xrd, js, tt.want)
			}
		})
	}
}

// TestHTTPS: the https listener serves HTTP/2 with the host's certificate,
// and host-meta there names wss:// and the https:// BOSH URL.
func TestHTTPS(t *testing.T) {
	s := testserver.Start(t, nil)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig(), ForceAttemptHTTP2: true}}
	resp, err := c.Get(s.HTTPSURL() + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	var doc struct {
		Links []struct{ Href string } `json:"links"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	want := []string{"wss://" + strings.TrimPrefix(s.HTTPSURL(), "https://") + "/xmpp-websocket", s.HTTPSURL() + "/http-bind"}
	if len(doc.Links) != len(want) || doc.Links[0].Href != want[0] || doc.Links[1].Href != want[1] {
		t.Errorf("links %v, want %v", doc.Links, want)
	}
	// The certificate is the host's.
	tc, err := tls.Dial("tcp", strings.TrimPrefix(s.HTTPSURL(), "https://"), s.TLSConfig())
	if err != nil {
		t.Fatalf("TLS with the host's certificate: %v", err)
	}
	tc.Close()
}
