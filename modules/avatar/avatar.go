// Package avatar reads User Avatar (XEP-0084) metadata, which two modules
// convert between (XEP-0398): pep, which puts the avatar's hash in
// presence, and vcard, which serves the avatar as the vCard's PHOTO and
// publishes a PHOTO set by an old client.
package avatar

import "github.com/xmppd/xmppd/router"

// The PEP nodes of XEP-0084.
const (
	NSMetadata = "urn:xmpp:avatar:metadata"
	NSData     = "urn:xmpp:avatar:data"
)

// Info returns the id (the SHA-1 of the image, in hex) and type of the
// avatar a metadata payload points to in the data node: its first <info/>
// without a url (XEP-0398 §3.1). isMetadata is false for a payload that
// is not metadata; an empty id with isMetadata true is metadata without
// such an info, which says that the account has no avatar (or only one
// elsewhere).
func Info(payload []byte) (id, typ string, isMetadata bool) {
	e, err := router.ParseElement(payload, "")
	if err != nil || e.Name.Space != NSMetadata || e.Name.Local != "metadata" {
		return "", "", false
	}
	for _, info := range e.Elements() {
		if info.Name.Local == "info" && info.Get("url") == "" && info.Get("id") != "" {
			return info.Get("id"), info.Get("type"), true
		}
	}
	return "", "", true
}
