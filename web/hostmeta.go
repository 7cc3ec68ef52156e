package web

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
)

// Link relations of XEP-0156.
const (
	RelWebSocket = "urn:xmpp:alt-connections:websocket"
	RelBOSH      = "urn:xmpp:alt-connections:xbosh"
)

// hostMetaLink is one link as host-meta lists it.
type hostMetaLink struct {
	Rel  string `json:"rel" xml:"rel,attr"`
	Href string `json:"href" xml:"href,attr"`
}

// links returns the registered links as absolute URLs for this request:
// under web.public_url when set, else at the scheme and host the client
// used (through a trusted proxy, the ones it names).
func (s *Server) links(r *http.Request) []hostMetaLink {
	base := strings.TrimSuffix(s.opts.Config.PublicURL, "/")
	if base == "" {
		cl := ClientOf(r)
		scheme := "http"
		if cl.Secure {
			scheme = "https"
		}
		base = scheme + "://" + cl.Host
	}
	snap := s.state.Load()
	out := make([]hostMetaLink, 0, len(snap.links))
	for _, rl := range snap.links {
		href := base + rl.l.Path
		if rl.l.WebSocket {
			if rest, ok := strings.CutPrefix(href, "https://"); ok {
				href = "wss://" + rest
			} else if rest, ok := strings.CutPrefix(href, "http://"); ok {
				href = "ws://" + rest
			}
		}
		out = append(out, hostMetaLink{Rel: rl.l.Rel, Href: href})
	}
	return out
}

// hostMetaXRD serves /.well-known/host-meta (XEP-0156 §3, RFC 6415).
func (s *Server) hostMetaXRD(w http.ResponseWriter, r *http.Request) {
	doc := struct {
		XMLName xml.Name       `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
		Links   []hostMetaLink `xml:"Link"`
	}{Links: s.links(r)}
	out, err := xml.MarshalIndent(doc, "", "  ")
	writeDoc(w, "application/xrd+xml; charset=utf-8", append([]byte(xml.Header), out...), err)
}

// writeDoc answers with a host-meta document.
func writeDoc(w http.ResponseWriter, contentType string, doc []byte, err error) {
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	// Web clients on other origins read it (XEP-0156 §3.2).
	h.Set("Access-Control-Allow-Origin", "*")
	w.Write(append(doc, '\n'))
}

// hostMetaJSON serves /.well-known/host-meta.json (XEP-0156 §3, RFC 6415
// appendix A).
func (s *Server) hostMetaJSON(w http.ResponseWriter, r *http.Request) {
	out, err := json.MarshalIndent(struct {
		Links []hostMetaLink `json:"links"`
	}{s.links(r)}, "", "  ")
	writeDoc(w, "application/json", out, err)
}
