package vcard

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/modules/avatar"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// The vCard half of XEP-0398 (the pep module puts the hash in presence).
// The PEP avatar (XEP-0084) is the vCard's PHOTO: a vCard asked for gets
// it injected, for a requester who may read both avatar nodes (the
// server-side alternative of XEP-0398 §6.2, which keeps a presence-only
// avatar from strangers, where a copy in the world-readable vCard would
// not), and a vCard stored with a new PHOTO is published to the two nodes
// for the account, so that PEP clients see it and are notified.
const (
	// FeaturePEPConversion is XEP-0398's feature on the account.
	FeaturePEPConversion = "urn:xmpp:pep-vcard-conversion:0"
	nsAvatarMetadata     = avatar.NSMetadata
	nsAvatarData         = avatar.NSData
)

// avatarInfo is the <info/> of the avatar a metadata item points to in
// the data node (avatar.Info); found is false for metadata without one
// (no avatar) and for what is not metadata.
func avatarInfo(payload []byte) (id, typ string, found bool) {
	id, typ, _ = avatar.Info(payload)
	return id, typ, id != ""
}

// pepPhoto returns the PHOTO the account's PEP avatar makes for
// requester, nil when it has none or requester may not read both nodes;
// has is false when the account has no avatar metadata at all, and its
// stored vCard is served as it is.
func (v *VCard) pepPhoto(ctx context.Context, acct, requester jid.JID) (photo *router.Element, has bool, err error) {
	ps := v.h.Store().PubSub()
	meta, err := ps.LastItem(ctx, acct, nsAvatarMetadata)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load avatar metadata: %w", err)
	}
	id, typ, found := avatarInfo(meta.Payload)
	if !found {
		return nil, true, nil
	}
	for _, node := range []string{nsAvatarMetadata, nsAvatarData} {
		ok, err := v.mayRead(ctx, acct, node, requester)
		if err != nil || !ok {
			return nil, true, err
		}
	}
	items, err := ps.Items(ctx, acct, nsAvatarData, storage.PubSubItemQuery{IDs: []string{id}})
	if err != nil || len(items) == 0 {
		if errors.Is(err, storage.ErrNotFound) {
			err = nil
		}
		return nil, true, err
	}
	data, err := router.ParseElement(items[0].Payload, "")
	if err != nil || data.Name.Space != nsAvatarData {
		return nil, true, nil
	}
	b64 := strings.Join(strings.Fields(data.Text()), "")
	if img, err := base64.StdEncoding.DecodeString(b64); err != nil || sha1Hex(img) != id {
		// XEP-0398 §3.1: the image must be the one the id names.
		return nil, true, nil
	}
	if typ == "" {
		typ = "image/png"
	}
	return router.NewElement(NS, "PHOTO").Append(
		router.NewElement(NS, "TYPE").AppendText(typ),
		router.NewElement(NS, "BINVAL").AppendText(b64)), true, nil
}

// mayRead tells whether requester may retrieve the items of acct's PEP
// node, by the node's access model and the account's roster (XEP-0060
// §4.5, as PEP decides).
func (v *VCard) mayRead(ctx context.Context, acct jid.JID, node string, requester jid.JID) (bool, error) {
	if requester.Bare().Equal(acct) {
		return true, nil
	}
	ps := v.h.Store().PubSub()
	n, err := ps.Node(ctx, acct, node)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load node %s: %w", node, err)
	}
	aff, err := ps.Affiliation(ctx, acct, node, requester)
	if err != nil {
		return false, fmt.Errorf("load affiliation with %s: %w", node, err)
	}
	var rel core.Relation
	it, err := v.h.Store().Rosters().Item(ctx, acct, requester.Bare())
	switch {
	case err == nil:
		rel = core.Relation{Subscribed: it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth, Groups: it.Groups}
	case !errors.Is(err, storage.ErrNotFound):
		return false, fmt.Errorf("load roster item: %w", err)
	}
	return core.Access(n.Config, rel, aff) == nil, nil
}

// withPhoto returns card (an empty vCard for nil) with photo as its only
// PHOTO, or with none for a nil photo.
func withPhoto(card, photo *router.Element) *router.Element {
	if card == nil {
		card = router.NewElement(NS, "vCard")
	}
	card.Children = slices.DeleteFunc(card.Children, func(n router.Node) bool {
		e, ok := n.(*router.Element)
		return ok && e.Name.Local == "PHOTO"
	})
	if photo != nil {
		card.Append(photo)
	}
	return card
}

func sha1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

// toPEP publishes the vCard's PHOTO as the account's PEP avatar, data then
// metadata (XEP-0398 §3.2), unless it is the avatar already. A vCard
// photo was world-readable, so the nodes are asked for the open access
// model; nodes the owner configured otherwise keep their configuration.
// A vCard without an inline PHOTO changes nothing.
func (v *VCard) toPEP(ctx context.Context, acct jid.JID, card *router.Element) error {
	photo := card.Child(NS, "PHOTO")
	if photo == nil || photo.Child(NS, "BINVAL") == nil {
		return nil
	}
	b64 := strings.Join(strings.Fields(photo.Child(NS, "BINVAL").Text()), "")
	img, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(img) == 0 {
		return nil // not a valid photo: nothing to convert
	}
	id := sha1Hex(img)
	if meta, err := v.h.Store().PubSub().LastItem(ctx, acct, nsAvatarMetadata); err == nil {
		if cur, _, _ := avatarInfo(meta.Payload); cur == id {
			return nil
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("load avatar metadata: %w", err)
	}
	typ := ""
	if t := photo.Child(NS, "TYPE"); t != nil {
		typ = strings.TrimSpace(t.Text())
	}
	if typ == "" {
		typ = http.DetectContentType(img)
	}
	if err := v.publish(ctx, acct, nsAvatarData, id, router.NewElement(nsAvatarData, "data").AppendText(b64)); err != nil {
		return err
	}
	return v.publish(ctx, acct, nsAvatarMetadata, id, router.NewElement(nsAvatarMetadata, "metadata").Append(
		router.NewElement(nsAvatarMetadata, "info", "id", id, "type", typ, "bytes", strconv.Itoa(len(img)))))
}

// publish publishes one item to acct's PEP node as the account, through
// the router (the pep module answers it and notifies), asking for the open
// access model and publishing to the node as it is when it is configured
// otherwise.
func (v *VCard) publish(ctx context.Context, acct jid.JID, node, id string, payload *router.Element) error {
	req := func(open bool) *router.Stanza {
		ps := router.NewElement(core.NS, "pubsub").Append(router.NewElement(core.NS, "publish", "node", node).Append(
			router.NewElement(core.NS, "item", "id", id).Append(payload)))
		if open {
			ps.Append(router.NewElement(core.NS, "publish-options").Append(
				router.NewElement("jabber:x:data", "x", "type", "submit").Append(
					router.NewElement("jabber:x:data", "field", "var", "FORM_TYPE").Append(router.NewElement("jabber:x:data", "value").AppendText(core.FormPublishOptions)),
					router.NewElement("jabber:x:data", "field", "var", core.FieldAccessModel).Append(router.NewElement("jabber:x:data", "value").AppendText("open")))))
		}
		iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "set").Append(ps)}
		iq.SetFrom(acct)
		iq.SetTo(acct)
		return iq
	}
	resp, err := v.h.Router().SendIQ(ctx, req(true))
	if err != nil && resp != nil {
		if e := resp.Child("", "error"); e != nil && e.Child(core.NSErrors, "precondition-not-met") != nil {
			_, err = v.h.Router().SendIQ(ctx, req(false))
		}
	}
	if err != nil {
		return fmt.Errorf("publish to %s: %w", node, err)
	}
	return nil
}
