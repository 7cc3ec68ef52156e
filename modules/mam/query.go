package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// owner returns the account whose archive iq asks for, and false if the
// asker may not have it. Only a client of the account itself may: the
// archive is private (XEP-0313 §7.1), and the answer to anyone else is
// forbidden, which that section recommends; it tells nothing of whether
// the account exists, since every account has an archive.
// maxIDs bounds the ids field (#extended): a page holds at most the page
// cap anyway, and SQLite takes at most 32766 parameters in a statement.
const maxIDs = 250

func (m *MAM) owner(iq *router.Stanza) (jid.JID, bool) {
	from := iq.From.Bare()
	if iq.From.Localpart() == "" || !m.h.Router().ServesUsers(iq.From.Domainpart()) {
		return jid.JID{}, false
	}
	if iq.To.Domainpart() != "" && !iq.To.Equal(from) {
		return jid.JID{}, false
	}
	return from, true
}

// set answers IQ sets of the namespace: a query, or new preferences.
func (m *MAM) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	owner, ok := m.owner(iq)
	if !ok {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	switch el := iq.FirstChild(); el.Name.Local {
	case "query":
		return m.query(ctx, iq, owner, el)
	case "prefs":
		return m.setPrefs(ctx, iq, owner, el)
	}
	return iq.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "")
}

// get answers IQ gets of the namespace: the query form, the preferences,
// the archive's metadata.
func (m *MAM) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	owner, ok := m.owner(iq)
	if !ok {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	switch iq.FirstChild().Name.Local {
	case "query":
		return iq.Reply(router.NewElement(NS, "query").Append(queryForm()))
	case "prefs":
		return m.getPrefs(ctx, iq, owner)
	case "metadata":
		return m.metadata(ctx, iq, owner)
	}
	return iq.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "")
}

// queryForm is the form of the fields a query may use (XEP-0313 §4.1.5):
// those of the XEP, with #extended, and XEP-0431's full-text search.
func queryForm() *router.Element {
	x := router.NewElement(NSData, "x", "type", "form")
	x.Append(router.NewElement(NSData, "field", "type", "hidden", "var", "FORM_TYPE").
		Append(router.NewElement(NSData, "value").AppendText(NS)))
	for _, f := range [][2]string{
		{"jid-single", "with"}, {"text-single", "start"}, {"text-single", "end"},
		{"text-single", "before-id"}, {"text-single", "after-id"},
	} {
		x.Append(router.NewElement(NSData, "field", "type", f[0], "var", f[1]))
	}
	x.Append(router.NewElement(NSData, "field", "type", "list-multi", "var", "ids").
		Append(router.NewElement(NSValidate, "validate", "datatype", "xs:string").
			Append(router.NewElement(NSValidate, "open"))))
	x.Append(router.NewElement(NSData, "field", "type", "text-single", "var", FieldText))
	return x
}

// queryError is a query that cannot run, with the error to answer.
type queryError struct {
	cond stanza.Condition
	text string
}

// parseQuery reads the form and the RSM set of a query into q, the page
// size capped at max. A bad form or value is bad-request, a field the
// server does not know feature-not-implemented (§4.1.5).
func parseQuery(el *router.Element, max int) (q storage.ArchiveQuery, flip bool, qe *queryError) {
	q.Max = max
	if x := el.Child(NSData, "x"); x != nil {
		if qe := parseForm(x, &q); qe != nil {
			return q, false, qe
		}
	}
	if set := el.Child(NSRSM, "set"); set != nil {
		if qe := parseRSM(set, &q, max); qe != nil {
			return q, false, qe
		}
	}
	flip = el.Child(NS, "flip-page") != nil
	return q, flip, nil
}

// parseForm reads the fields of a submitted query form.
func parseForm(x *router.Element, q *storage.ArchiveQuery) *queryError {
	if t := x.Get("type"); t != "submit" {
		return &queryError{stanza.BadRequest, "the query form must be of type submit"}
	}
	for _, f := range x.Elements() {
		if f.Name.Space != NSData || f.Name.Local != "field" {
			continue
		}
		var values []string
		for _, v := range f.Elements() {
			if v.Name.Space == NSData && v.Name.Local == "value" {
				values = append(values, v.Text())
			}
		}
		value := ""
		if len(values) > 0 {
			value = values[0]
		}
		name := f.Get("var")
		if len(values) > 1 && name != "ids" {
			return &queryError{stanza.BadRequest, "field " + name + " takes one value"}
		}
		var err error
		switch name {
		case "FORM_TYPE":
			if value != NS {
				return &queryError{stanza.BadRequest, "FORM_TYPE must be " + NS}
			}
		case "with":
			if value != "" {
				if q.With, err = jid.Parse(value); err != nil {
					return &queryError{stanza.JIDMalformed, "with: " + err.Error()}
				}
			}
		case "start", "end":
			if value == "" {
				continue
			}
			t, err := parseDateTime(value)
			if err != nil {
				return &queryError{stanza.BadRequest, name + ": not a XEP-0082 datetime"}
			}
			if name == "start" {
				q.Start = t
			} else {
				q.End = t
			}
		case "before-id":
			q.BeforeID = value
		case "after-id":
			q.AfterID = value
		case "ids":
			q.IDs = slices.DeleteFunc(values, func(s string) bool { return s == "" })
			if len(q.IDs) > maxIDs {
				// Each id is a parameter of the database's query.
				return &queryError{stanza.PolicyViolation, fmt.Sprintf("at most %d ids in one query", maxIDs)}
			}
		case FieldText:
			q.Text = value
		default:
			return &queryError{stanza.FeatureNotImplemented, "unknown field " + name}
		}
	}
	return nil
}

// parseDateTime reads a XEP-0082 DateTime: a date, a time with optional
// fractions of a second, and a time zone (Z or an offset).
func parseDateTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// parseRSM reads an RSM <set/> (XEP-0059): <max/>, <after/>, <before/>
// (empty for the last page). <index/> is not supported (§2.7 lets the
// server refuse it).
func parseRSM(set *router.Element, q *storage.ArchiveQuery, max int) *queryError {
	if e := set.Child(NSRSM, "max"); e != nil {
		n, err := strconv.Atoi(e.Text())
		if err != nil || n < 0 {
			return &queryError{stanza.BadRequest, "max must be a number of items"}
		}
		q.Max = min(n, max)
	}
	if set.Child(NSRSM, "index") != nil {
		return &queryError{stanza.FeatureNotImplemented, "paging by index is not supported"}
	}
	after, before := set.Child(NSRSM, "after"), set.Child(NSRSM, "before")
	if after != nil && before != nil {
		// §4.3.2: RSM leaves it undefined; before-id and after-id do it.
		return &queryError{stanza.BadRequest, "before and after together: use before-id and after-id"}
	}
	if after != nil {
		if q.After = after.Text(); q.After == "" {
			return &queryError{stanza.BadRequest, "after needs an id"}
		}
	}
	if before != nil {
		q.Before = before.Text()
		q.LastPage = q.Before == ""
	}
	return nil
}

// countLimit is how many matches a query for a page counts at most: the
// count costs a read of each match's index entry, and a client paging
// through a large archive needs no count (XEP-0059 §2.1 lets it be left
// out when it is exceptionally costly). Counting 10,000 matches takes about
// a millisecond when the index alone answers (an account, a bare JID, a
// time range), more when each match is read from the table (a full JID,
// words of full-text search).
const countLimit = 10000

// query runs a query (§4): the page of results goes to the querying
// resource only, as messages, then the IQ result with <fin/>.
func (m *MAM) query(ctx context.Context, iq *router.Stanza, owner jid.JID, el *router.Element) *router.Stanza {
	q, flip, qe := parseQuery(el, m.maxPage)
	if qe != nil {
		return iq.ErrorReply(router.DefaultErrorType(qe.cond), qe.cond, qe.text)
	}
	if q.Max > 0 {
		// A query for a page counts up to countLimit matches; one for the
		// count alone (max 0, XEP-0059 §2.6) is answered exactly.
		q.CountLimit = countLimit
	}
	page, qerr := m.read(ctx, owner, q)
	if qerr != nil {
		return iq.ErrorReply(router.DefaultErrorType(qerr.cond), qerr.cond, qerr.text)
	}
	s := m.h.Router().Session(iq.From)
	if s == nil {
		return nil // the resource is gone; nobody to answer
	}
	queryID := el.Get("queryid")
	order := page.Messages
	if flip {
		order = slices.Clone(order)
		slices.Reverse(order)
	}
	for _, msg := range order {
		res, err := result(owner, iq.From, queryID, msg)
		if err != nil {
			m.h.Logger().Error("archive: unreadable message", slog.String("owner", owner.String()),
				slog.String("id", msg.ID), slog.Any("err", err))
			continue
		}
		if !m.h.Router().DeliverTo(ctx, s, res) {
			return nil // the session is closing
		}
	}
	return iq.Reply(fin(page))
}

// queryWait is how long a query waits for the account's query before it
// to end, before it is answered resource-constraint.
const queryWait = 30 * time.Second

// read runs q on the store, one query of an account at a time whichever of
// its resources asks (clients page one query after the other, and an
// account with many resources must not take the database's connections
// from everyone else), and holds the account's slot only while it reads:
// the results are delivered after.
func (m *MAM) read(ctx context.Context, owner jid.JID, q storage.ArchiveQuery) (storage.ArchivePage, *queryError) {
	wctx, cancel := context.WithTimeout(ctx, queryWait)
	release, err := m.queries.acquire(wctx, owner.String())
	cancel()
	if err != nil {
		return storage.ArchivePage{}, &queryError{stanza.ResourceConstraint, "another query of the account is running"}
	}
	defer release()
	page, err := m.store.Query(ctx, owner, q)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.ArchivePage{}, &queryError{stanza.ItemNotFound, ""}
	case err != nil:
		m.h.Logger().Error("query archive", slog.String("owner", owner.String()), slog.Any("err", err))
		return storage.ArchivePage{}, &queryError{stanza.InternalServerError, ""}
	}
	if len(q.IDs) > 0 {
		// §4.1.3: an id of 'ids' that is not in the archive is
		// item-not-found, where the store skips it.
		if missing, err := m.missingIDs(ctx, owner, q.IDs, page.Count); err != nil {
			m.h.Logger().Error("query archive", slog.String("owner", owner.String()), slog.Any("err", err))
			return storage.ArchivePage{}, &queryError{stanza.InternalServerError, ""}
		} else if missing {
			return storage.ArchivePage{}, &queryError{stanza.ItemNotFound, ""}
		}
	}
	return page, nil
}

// querySlots lets one query per account run at a time; a query waits for
// its account's slot as long as its context lets it. A slot lives while
// someone holds or waits for it.
type querySlots struct {
	mu sync.Mutex
	m  map[string]*querySlot
}

type querySlot struct {
	ch   chan struct{} // holds a token while the slot is taken
	refs int           // holders and waiters
}

// acquire takes key's slot, or fails when ctx ends first; release gives
// it back.
func (q *querySlots) acquire(ctx context.Context, key string) (release func(), err error) {
	q.mu.Lock()
	if q.m == nil {
		q.m = map[string]*querySlot{}
	}
	s := q.m[key]
	if s == nil {
		s = &querySlot{ch: make(chan struct{}, 1)}
		q.m[key] = s
	}
	s.refs++
	q.mu.Unlock()
	leave := func() {
		q.mu.Lock()
		if s.refs--; s.refs == 0 {
			delete(q.m, key)
		}
		q.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// size is the number of live slots, for tests.
func (q *querySlots) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.m)
}

// missingIDs tells whether one of ids is not in owner's archive, given
// that a query with them and maybe other filters matched found messages.
func (m *MAM) missingIDs(ctx context.Context, owner jid.JID, ids []string, found int) (bool, error) {
	unique := len(slices.Compact(slices.Sorted(slices.Values(ids))))
	if found >= unique {
		return false, nil
	}
	all, err := m.store.Query(ctx, owner, storage.ArchiveQuery{IDs: ids})
	if err != nil {
		return false, err
	}
	return all.Count < unique, nil
}

// result is the message that carries one archived message to the client
// (§4.2): a <result/> with the archive id and the query's id around the
// message forwarded (XEP-0297) with the time it was archived (XEP-0203).
func result(owner, to jid.JID, queryID string, msg storage.ArchivedMessage) (*router.Stanza, error) {
	inner, err := router.ParseElement(msg.Stanza, router.NSClient)
	if err != nil {
		return nil, err
	}
	r := router.NewElement(NS, "result", "queryid", queryID, "id", msg.ID)
	r.Append(router.NewElement(NSForward, "forwarded").Append(
		router.NewElement(NSDelay, "delay", "stamp", stamp(msg.Stamp)), inner))
	e := router.NewElement("", router.KindMessage, "from", owner.String(), "to", to.String(), "id", router.NewID())
	e.Append(r)
	return &router.Stanza{Element: e, From: owner, To: to}, nil
}

// fin is the query's end (§4.3): the RSM set of the page, and complete
// when the page reaches the end of the result in the query's direction.
func fin(page storage.ArchivePage) *router.Element {
	f := router.NewElement(NS, "fin")
	if page.Complete {
		f.SetAttr("complete", "true")
	}
	set := router.NewElement(NSRSM, "set")
	if n := len(page.Messages); n > 0 {
		// No index attribute (XEP-0059 §2.1 makes it optional), as
		// Prosody sends none: slixmpp 1.8's RSM iterator takes
		// index+items == count for the end of the walk whatever its
		// direction, and so stopped paging backwards after one page.
		set.Append(router.NewElement(NSRSM, "first").AppendText(page.Messages[0].ID))
		set.Append(router.NewElement(NSRSM, "last").AppendText(page.Messages[n-1].ID))
	}
	if page.Count >= 0 {
		set.Append(router.NewElement(NSRSM, "count").AppendText(strconv.Itoa(page.Count)))
	}
	return f.Append(set)
}

// metadata answers <metadata/> (§5): the first and last message of the
// archive, or nothing for an empty one.
func (m *MAM) metadata(ctx context.Context, iq *router.Stanza, owner jid.JID) *router.Stanza {
	b, err := m.store.Bounds(ctx, owner)
	if err != nil {
		m.h.Logger().Error("archive bounds", slog.String("owner", owner.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	md := router.NewElement(NS, "metadata")
	if b.FirstID != "" {
		md.Append(router.NewElement(NS, "start", "id", b.FirstID, "timestamp", stamp(b.FirstStamp)),
			router.NewElement(NS, "end", "id", b.LastID, "timestamp", stamp(b.LastStamp)))
	}
	return iq.Reply(md)
}

// stamp formats t as a XEP-0082 DateTime in UTC.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z") }
