// Package register is in-band registration (XEP-0077), all of it: signing
// up before authentication, when module_options.register.allow_registration
// lets anyone create an account (signup.go, plugged into c2s's stream
// negotiation), and for an authenticated user seeing that it is
// registered, changing its password or removing its account, which work
// whether sign-up is allowed or not.
package register

import (
	"context"
	"errors"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// NS is the jabber:iq:register namespace.
const NS = "jabber:iq:register"

func init() {
	modules.RegisterWithOptions("register", DefaultOptions(), New)
}

// Options are the register module's settings, module_options.register.
type Options struct {
	// AllowRegistration lets anyone create an account over XMPP before
	// logging in. Password change and removal work either way.
	AllowRegistration bool `yaml:"allow_registration"`
	// PerIP accounts may be created from one IP address (IPv6: one /64)
	// within Window; more get policy-violation until the window passes.
	PerIP  int           `yaml:"per_ip"`
	Window time.Duration `yaml:"window"`
}

// DefaultOptions keeps sign-up off, since open registration invites spam
// accounts, and when it is turned on lets one address create a few
// accounts an hour: a household, not a bot.
func DefaultOptions() Options { return Options{PerIP: 3, Window: time.Hour} }

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	return errors.Join(modules.MustBePositive("per_ip", o.PerIP), modules.MustBePositive("window", o.Window))
}

// New returns an unstarted register module with options o.
func New(o Options) *Register {
	return &Register{opts: o, limit: newRegistrationLimit(o.PerIP, o.Window)}
}

// Register is the in-band registration module.
type Register struct {
	h    *modules.Host
	opts Options
	// limit counts the accounts created per address (signup.go).
	limit *registrationLimit
}

var _ modules.Starter = (*Register)(nil)

// Start implements modules.Starter.
func (r *Register) Start(_ context.Context, h *modules.Host) error {
	r.h = h
	// §10: advertised because password change and removal always work.
	h.AddFeature(router.ToServer, NS)
	if err := h.HandleIQ(router.ToServer, stanza.GetIQ, NS, r.get); err != nil {
		return err
	}
	return h.HandleIQ(router.ToServer, stanza.SetIQ, NS, r.set)
}

// users is the shared account operations (package admin), so that the
// CLI and this module create credentials and delete data the same way.
func (r *Register) users() admin.Users {
	cfg := r.h.Config()
	return admin.Users{Config: cfg, Users: r.h.Store().Users(), Store: r.h.Store(),
		// The account is gone from the database when this runs: a file
		// left behind is logged, not an error to the client, and the
		// upload module's sweep removes it later.
		DeleteData: func(ctx context.Context, account jid.JID) error {
			if err := modules.RemoveAccountData(ctx, cfg, account); err != nil {
				r.h.Logger().Error("register: remove account files", "account", account.String(), "err", err)
			}
			return nil
		}}
}

// account returns the sender's account if the IQ is about its registration
// with its own server: from a local account, to that account's domain (or
// with no 'to'). Registering with this server from anywhere else is not
// offered.
func (r *Register) account(iq *router.Stanza) (jid.JID, bool) {
	from := iq.From
	if from.Localpart() == "" || !r.h.Router().ServesUsers(from.Domainpart()) {
		return jid.JID{}, false
	}
	if iq.To.Domainpart() != "" && iq.To.Domainpart() != from.Domainpart() {
		return jid.JID{}, false
	}
	return from.Bare(), true
}

// get tells a registered user that it is registered (§3.1): <registered/>
// and the username; the password is never known to the server.
func (r *Register) get(_ context.Context, iq *router.Stanza) *router.Stanza {
	acct, ok := r.account(iq)
	if !ok {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	q := router.NewElement(NS, "query").Append(
		router.NewElement(NS, "registered"),
		router.NewElement(NS, "instructions").AppendText("You are registered. Send a new password to change it, or <remove/> to delete your account."),
		router.NewElement(NS, "username").AppendText(acct.Localpart()),
		router.NewElement(NS, "password"),
	)
	return iq.Reply(q)
}

// set changes the password (§3.3) or removes the account (§3.2).
func (r *Register) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	acct, ok := r.account(iq)
	if !ok {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	q := iq.FirstChild()
	if q.Name.Local != "query" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
	}
	if q.Child(NS, "remove") != nil {
		if len(q.Elements()) != 1 {
			// §3.2: <remove/> must be the only child.
			return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "<remove/> must be the only child of <query/>")
		}
		return r.remove(ctx, iq, acct)
	}
	return r.changePassword(ctx, iq, acct)
}

// changePassword replaces the account's credentials. §3.3: an empty
// password must leave the old one in place, and incomplete requests are
// bad-request; naming another account is forbidden (RFC 6120 §8.3.3.4).
func (r *Register) changePassword(ctx context.Context, iq *router.Stanza, acct jid.JID) *router.Stanza {
	q := iq.FirstChild()
	userEl, passEl := q.Child(NS, "username"), q.Child(NS, "password")
	if userEl == nil || passEl == nil || strings.TrimSpace(userEl.Text()) == "" || passEl.Text() == "" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "a password change needs <username/> and a non-empty <password/>")
	}
	if !sameAccount(strings.TrimSpace(userEl.Text()), acct) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "you can only change your own password")
	}
	if _, err := r.users().SetPassword(ctx, acct.String(), passEl.Text()); err != nil {
		r.h.Logger().Error("register: change password", "account", acct.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	r.h.Logger().Info("password changed in band", "account", acct.String())
	return iq.Reply()
}

// sameAccount tells whether a <username/> names acct: its local part, or
// its bare JID as the §3.3 data form example writes it.
func sameAccount(username string, acct jid.JID) bool {
	if strings.Contains(username, "@") {
		j, err := jid.Parse(username)
		return err == nil && j.Resourcepart() == "" && j.Equal(acct)
	}
	j, err := jid.New(username, acct.Domainpart(), "")
	return err == nil && j.Equal(acct)
}

// remove deletes the account with all its data, answers, and ends every
// session of the account with a not-authorized stream error (§3.2, first
// scenario). The answer is queued before the sessions are closed, and c2s
// writes what was queued before the stream error, so the client that asked
// sees its result first.
func (r *Register) remove(ctx context.Context, iq *router.Stanza, acct jid.JID) *router.Stanza {
	if _, err := r.h.Store().Users().Get(ctx, acct.Domainpart(), acct.Localpart()); errors.Is(err, storage.ErrNotFound) {
		// Removed meanwhile, by another session or the operator.
		return iq.ErrorReply(stanza.Auth, stanza.RegistrationRequired, "")
	}
	r.cancelSubscriptions(ctx, acct)
	if _, err := r.users().Delete(ctx, acct.String()); err != nil {
		r.h.Logger().Error("register: remove account", "account", acct.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	r.h.Logger().Info("account removed in band", "account", acct.String())
	r.h.Route(ctx, iq.Reply())
	for _, s := range r.h.Router().Sessions(acct) {
		s.Close(stream.NotAuthorized)
	}
	return nil
}

// cancelSubscriptions tells every contact that the account is going: an
// unsubscribe and/or unsubscribed as a roster removal would send (RFC 6121
// §2.5.2, XEP-0077 §3.2). Local contacts' rosters change and are pushed to
// their clients on the spot; remote contacts hear it through federation.
func (r *Register) cancelSubscriptions(ctx context.Context, acct jid.JID) {
	items, err := admin.Contacts(ctx, r.h.Store(), acct)
	if err != nil {
		r.h.Logger().Error("register: load roster", "account", acct.String(), "err", err)
		return
	}
	for _, it := range items {
		for _, typ := range subscription.Remove(it) {
			p := &router.Stanza{Element: router.NewElement("", "presence", "type", typ)}
			p.SetFrom(acct)
			p.SetTo(it.Contact)
			r.h.Route(ctx, p)
		}
	}
}
