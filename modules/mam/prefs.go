package mam

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// policy is the server's side of the preferences: the mode of an account
// that set none, and the modes an account may choose.
type policy struct {
	def     storage.ArchiveMode
	allowed []storage.ArchiveMode
}

// policyFrom reads the policy from the configuration's archive section,
// whose defaults allow every mode and archive always.
func policyFrom(cfg *config.Config) policy {
	p := policy{def: storage.ArchiveMode(cfg.Archive.Default)}
	for _, a := range cfg.Archive.Allowed {
		p.allowed = append(p.allowed, storage.ArchiveMode(a))
	}
	if p.def == "" {
		p.def = storage.ArchiveAlways
	}
	if len(p.allowed) == 0 {
		p.allowed = []storage.ArchiveMode{storage.ArchiveAlways, storage.ArchiveNever, storage.ArchiveRoster}
	}
	return p
}

// effective returns the mode that applies to an account whose stored
// default is mode: an operator who no longer allows it gets the server's.
func (p policy) effective(mode storage.ArchiveMode) storage.ArchiveMode {
	if mode == "" || !slices.Contains(p.allowed, mode) {
		return p.def
	}
	return mode
}

// prefsTTL bounds how long an account's preferences are trusted from the
// cache: the module changes them only through itself, so the cache is
// exact for what it sets, and the bound covers what it cannot hear of (an
// account deleted and made again, another node).
const prefsTTL = time.Minute

// maxCachedPrefs bounds the cache; when it is full it is emptied.
const maxCachedPrefs = 100_000

// prefsCache remembers accounts' preferences, so that archiving a message
// costs no query for them.
type prefsCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]cachedPrefs
}

// cachedPrefs is an account's preferences (nil: none set) and when they
// were read.
type cachedPrefs struct {
	prefs *storage.ArchivePrefs
	read  time.Time
}

func newPrefsCache(ttl time.Duration) prefsCache {
	return prefsCache{ttl: ttl, m: map[string]cachedPrefs{}}
}

func (c *prefsCache) get(owner string, now time.Time) (*storage.ArchivePrefs, bool) {
	c.mu.RLock()
	e, ok := c.m[owner]
	c.mu.RUnlock()
	if !ok || now.Sub(e.read) > c.ttl {
		return nil, false
	}
	return e.prefs, true
}

func (c *prefsCache) put(owner string, p *storage.ArchivePrefs, now time.Time) {
	c.mu.Lock()
	if len(c.m) >= maxCachedPrefs {
		clear(c.m)
	}
	c.m[owner] = cachedPrefs{p, now}
	c.mu.Unlock()
}

// loadPrefs returns owner's preferences, nil if it set none.
func (m *MAM) loadPrefs(ctx context.Context, owner jid.JID) (*storage.ArchivePrefs, error) {
	key := owner.String()
	now := m.now()
	if p, ok := m.prefs.get(key, now); ok {
		return p, nil
	}
	p, err := m.store.Prefs(ctx, owner)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		m.prefs.put(key, nil, now)
		return nil, nil
	case err != nil:
		return nil, err
	}
	m.prefs.put(key, &p, now)
	return &p, nil
}

// archives tells whether owner's preferences let a message exchanged with
// peer into owner's archive (XEP-0441 §2.1, matching as §2.3 says). If they
// cannot be read, the message is archived, with the error logged: a gap in
// the history is the worse failure.
func (m *MAM) archives(ctx context.Context, owner, peer jid.JID) bool {
	p, err := m.loadPrefs(ctx, owner)
	if err != nil {
		m.h.Logger().Error("archive: read preferences", slog.String("owner", owner.String()), slog.Any("err", err))
		return true
	}
	mode := m.policy.def
	if p != nil {
		if listed(p.Never, peer) {
			return false
		}
		if listed(p.Always, peer) {
			return true
		}
		mode = m.policy.effective(p.Default)
	}
	switch mode {
	case storage.ArchiveNever:
		return false
	case storage.ArchiveRoster:
		return m.inRoster(ctx, owner, peer)
	}
	return true
}

// listed tells whether peer matches one of list: a bare JID in the list
// matches every resource of it, a full JID only itself.
func listed(list []jid.JID, peer jid.JID) bool {
	for _, j := range list {
		if j.Resourcepart() == "" && j.Equal(peer.Bare()) || j.Equal(peer) {
			return true
		}
	}
	return false
}

// inRoster tells whether peer's bare JID is in owner's roster, whatever the
// subscription; the account itself counts as in it.
func (m *MAM) inRoster(ctx context.Context, owner, peer jid.JID) bool {
	if peer.Bare().Equal(owner) {
		return true
	}
	_, err := m.h.Store().Rosters().Item(ctx, owner, peer.Bare())
	switch {
	case err == nil:
		return true
	case errors.Is(err, storage.ErrNotFound):
		return false
	}
	m.h.Logger().Error("archive: read roster", slog.String("owner", owner.String()), slog.Any("err", err))
	return false
}

// getPrefs answers <prefs/> get with the account's preferences, or the
// server's default and empty lists if it set none (XEP-0441 §2.1).
func (m *MAM) getPrefs(ctx context.Context, iq *router.Stanza, owner jid.JID) *router.Stanza {
	p, err := m.loadPrefs(ctx, owner)
	if err != nil {
		m.h.Logger().Error("read preferences", slog.String("owner", owner.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	shown := storage.ArchivePrefs{Default: m.policy.def}
	if p != nil {
		shown = *p
		shown.Default = m.policy.effective(p.Default)
	}
	return iq.Reply(prefsElement(shown))
}

// setPrefs stores the preferences a <prefs/> set gives and answers with
// them. A default that is not a XEP-0441 mode, or a JID that does not
// parse, is bad-request (jid-malformed for the JID); a mode the server does
// not allow is not-acceptable, the modify error that says the value, not
// the request, is refused.
func (m *MAM) setPrefs(ctx context.Context, iq *router.Stanza, owner jid.JID, el *router.Element) *router.Stanza {
	mode := storage.ArchiveMode(el.Get("default"))
	switch mode {
	case storage.ArchiveAlways, storage.ArchiveNever, storage.ArchiveRoster:
	default:
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "default must be always, never or roster")
	}
	if !slices.Contains(m.policy.allowed, mode) {
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "this server does not allow default='"+string(mode)+"'")
	}
	p := storage.ArchivePrefs{Default: mode}
	for _, list := range []struct {
		name string
		jids *[]jid.JID
	}{{"always", &p.Always}, {"never", &p.Never}} {
		l := el.Child(NS, list.name)
		if l == nil {
			continue
		}
		for _, e := range l.Elements() {
			if e.Name.Space != NS || e.Name.Local != "jid" {
				return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
			}
			j, err := jid.Parse(e.Text())
			if err != nil {
				return iq.ErrorReply(stanza.Modify, stanza.JIDMalformed, "")
			}
			if !slices.ContainsFunc(*list.jids, j.Equal) {
				*list.jids = append(*list.jids, j)
			}
		}
	}
	if err := m.store.SetPrefs(ctx, owner, p); err != nil {
		m.h.Logger().Error("store preferences", slog.String("owner", owner.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	m.prefs.put(owner.String(), &p, m.now())
	return iq.Reply(prefsElement(p))
}

// prefsElement is <prefs/> for p, with both lists present even if empty.
func prefsElement(p storage.ArchivePrefs) *router.Element {
	e := router.NewElement(NS, "prefs", "default", string(p.Default))
	for _, list := range []struct {
		name string
		jids []jid.JID
	}{{"always", p.Always}, {"never", p.Never}} {
		l := router.NewElement(NS, list.name)
		for _, j := range list.jids {
			l.Append(router.NewElement(NS, "jid").AppendText(j.String()))
		}
		e.Append(l)
	}
	return e
}
