// Package vcard stores and serves each account's vcard-temp (XEP-0054), the
// vCard that clients also use for avatars (XEP-0153). The server answers for
// the account: a vCard is world-readable, and only its owner may change it.
//
// XEP-0153 needs nothing more from the server: the client puts the avatar
// hash in its presence and contacts fetch the vCard from here. With the
// pep module running, the PEP avatar (XEP-0084) and the vCard PHOTO are
// one (XEP-0398, avatar.go).
package vcard

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// NS is the vcard-temp namespace.
const NS = "vcard-temp"

func init() {
	modules.RegisterWithOptions("vcard", DefaultOptions(), func(o Options) *VCard {
		return &VCard{maxSize: o.MaxSize}
	})
}

// Options are the vcard module's settings, module_options.vcard.
type Options struct {
	// MaxSize bounds one vCard, in bytes: room for a small avatar, which
	// XEP-0153 clients put in it.
	MaxSize int `yaml:"max_size"`
}

// DefaultOptions allows 64 KiB, what ejabberd allows.
func DefaultOptions() Options { return Options{MaxSize: 64 << 10} }

// Validate implements modules.Validator.
func (o *Options) Validate() error { return modules.MustBePositive("max_size", o.MaxSize) }

// VCard is the vcard-temp module.
type VCard struct {
	h       *modules.Host
	maxSize int
	// pep: the pep module runs, and avatars are converted (XEP-0398).
	pep bool
}

var _ modules.Starter = (*VCard)(nil)

// Start implements modules.Starter.
func (v *VCard) Start(_ context.Context, h *modules.Host) error {
	v.h = h
	// XEP-0054 §3: the server advertises vcard-temp.
	h.AddFeature(router.ToServer, NS)
	if v.pep = h.Enabled("pep"); v.pep {
		// Both directions of XEP-0398 work only with both modules: this
		// one serves and converts vCards, pep puts the hash in presence.
		h.AddFeature(router.ToAccount, FeaturePEPConversion)
	}
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, v.get); err != nil {
		return err
	}
	return h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, v.set)
}

// owner is the account an IQ to an account is about: its 'to', or the
// sender's own account when there is none (RFC 6120 §10.3.3).
func owner(iq *router.Stanza) jid.JID {
	if iq.To.Domainpart() == "" {
		return iq.From.Bare()
	}
	return iq.To.Bare()
}

// get returns a vCard (XEP-0054 §2.1 and §2.3), with the account's PEP
// avatar as its PHOTO when the pep module runs (XEP-0398, avatar.go).
func (v *VCard) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	acct := owner(iq)
	own := acct.Equal(iq.From.Bare())
	var card *router.Element
	data, err := v.h.Store().VCards().Get(ctx, acct)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		v.h.Logger().Error("vcard: load", "account", acct.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	default:
		if card, err = router.ParseElement(data, router.NSClient); err != nil {
			v.h.Logger().Error("vcard: stored vCard unreadable", "account", acct.String(), "err", err)
			return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
		}
	}
	if v.pep {
		photo, has, err := v.pepPhoto(ctx, acct, iq.From)
		if err != nil {
			v.h.Logger().Error("vcard: pep avatar", "account", acct.String(), "err", err)
			return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
		}
		if has && (card != nil || photo != nil) {
			card = withPhoto(card, photo)
		}
	}
	switch {
	case card != nil:
		return iq.Reply(card)
	case own:
		// §2.1 allows item-not-found or an empty vCard; the empty vCard
		// is what clients expect before they publish their first one.
		return iq.Reply(router.NewElement(NS, "vCard"))
	default:
		// §2.3: the same error whether the account or only its vCard is
		// missing, so that nobody can harvest account names.
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
}

// set stores the sender's vCard, replacing the whole of it (XEP-0054 §2.2);
// with the pep module running, a new PHOTO is published as the PEP avatar
// (XEP-0398 §3.2).
func (v *VCard) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	acct := owner(iq)
	if !acct.Equal(iq.From.Bare()) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	card := iq.FirstChild()
	if card.Name.Local != "vCard" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "the payload must be <vCard xmlns='vcard-temp'/>")
	}
	data := card.AppendXML(nil, router.NSClient)
	if max := v.maxSize; len(data) > max {
		// Like an oversized pubsub item (XEP-0060 §7.1.3.4) or upload
		// (XEP-0363): the request does not meet the server's criteria.
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, fmt.Sprintf("the vCard is too large: %d bytes, at most %d allowed", len(data), max))
	}
	if err := v.h.Store().VCards().Set(ctx, acct, data); err != nil {
		v.h.Logger().Error("vcard: store", "account", acct.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	if v.pep {
		if err := v.toPEP(ctx, acct, card); err != nil {
			// The vCard is stored; only the copy failed.
			v.h.Logger().Error("vcard: avatar to pep", "account", acct.String(), "err", err)
		}
	}
	return iq.Reply()
}
