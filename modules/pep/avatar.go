package pep

import (
	"context"
	"errors"
	"slices"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/modules/avatar"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// The PEP half of XEP-0398 (the vcard module does the other): with the
// vcard module running, the account's available presence carries the hash
// of its PEP avatar (XEP-0084) as XEP-0153 says a vCard avatar's is, so
// that clients that know avatars only from vCards (and MUC occupants,
// who see no PEP) fetch it; the vcard module serves that avatar as the
// vCard's PHOTO.
const (
	// NSAvatarMetadata and NSAvatarData are the nodes of XEP-0084.
	NSAvatarMetadata = avatar.NSMetadata
	NSAvatarData     = avatar.NSData
	// NSVCardUpdate is the presence extension of XEP-0153.
	NSVCardUpdate = "vcard-temp:x:update"
)

// AvatarID is avatar.Info, for the callers of this package.
func AvatarID(payload []byte) (id, typ string, ok bool) { return avatar.Info(payload) }

// avatarHashes caches, for the accounts with sessions, the hash their
// presence carries, so that a presence broadcast to every contact costs
// one lookup of the metadata node, not one per contact. A change of the
// metadata node invalidates the account's entry; a load that began
// before the change is not kept (gen).
type avatarHashes struct {
	mu sync.Mutex
	m  map[string]*avatarEntry
}

type avatarEntry struct {
	gen    uint64
	loaded bool
	// has: the account has a metadata item; hash is its avatar's id,
	// "" for none.
	has  bool
	hash string
}

// lookup returns owner's hash, loading it with load when not cached.
func (c *avatarHashes) lookup(owner jid.JID, load func() (hash string, has bool, err error)) (string, bool, error) {
	k := owner.String()
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*avatarEntry{}
	}
	e := c.m[k]
	if e == nil {
		e = &avatarEntry{}
		c.m[k] = e
	}
	if e.loaded {
		c.mu.Unlock()
		return e.hash, e.has, nil
	}
	gen := e.gen
	c.mu.Unlock()
	hash, has, err := load()
	if err != nil {
		return "", false, err
	}
	c.mu.Lock()
	if c.m[k] == e && e.gen == gen {
		e.loaded, e.hash, e.has = true, hash, has
	}
	c.mu.Unlock()
	return hash, has, nil
}

// invalidate forgets owner's hash: its metadata node changed.
func (c *avatarHashes) invalidate(owner jid.JID) {
	c.mu.Lock()
	if e := c.m[owner.String()]; e != nil {
		e.gen++
		e.loaded = false
	}
	c.mu.Unlock()
}

// forget drops owner's entry: it has no session left.
func (c *avatarHashes) forget(owner jid.JID) {
	c.mu.Lock()
	delete(c.m, owner.String())
	c.mu.Unlock()
}

// avatarHash loads owner's hash from the metadata node.
func (p *PEP) avatarHash(ctx context.Context, owner jid.JID) (string, bool, error) {
	it, err := p.svc.Store.LastItem(ctx, owner, NSAvatarMetadata)
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	id, _, ok := AvatarID(it.Payload)
	return id, ok, nil
}

// withAvatarHash puts the account's avatar hash in an available presence
// from one of its resources (XEP-0398 §4): an <x/> of XEP-0153 without a
// photo, or with another hash, is replaced; one with an empty <photo/>
// (the client says it has no avatar) is left as it is; a presence
// without one gets one. An account without avatar metadata keeps its
// presence as its client made it. st is copied before it is changed.
func (p *PEP) withAvatarHash(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindPresence || st.Type() != "" || st.From.Resourcepart() == "" || !p.h.Router().ServesUsers(st.From.Domainpart()) {
		return st
	}
	owner := st.From.Bare()
	hash, has, err := p.avatars.lookup(owner, func() (string, bool, error) { return p.avatarHash(ctx, owner) })
	if err != nil {
		p.h.Logger().Error("pep: avatar hash", "owner", owner, "err", err)
		return st
	}
	if !has {
		return st
	}
	if x := st.Child(NSVCardUpdate, "x"); x != nil {
		if photo := x.Child(NSVCardUpdate, "photo"); photo != nil && (photo.Text() == "" || photo.Text() == hash) {
			return st
		}
	}
	out := st.Copy()
	out.Children = slices.DeleteFunc(out.Children, func(n router.Node) bool {
		e, ok := n.(*router.Element)
		return ok && e.Name.Space == NSVCardUpdate
	})
	photo := router.NewElement(NSVCardUpdate, "photo")
	if hash != "" {
		photo.AppendText(hash)
	}
	out.Append(router.NewElement(NSVCardUpdate, "x").Append(photo))
	return out
}
