// Package query is the XEP-0313 protocol that xmppd's archives share: the
// accounts' archives (modules/mam) and the rooms' (modules/muc). It parses
// a query's form and its RSM set (XEP-0059), reads the page from
// storage.Archives, sends the results and answers with <fin/>, and answers
// the query form and the metadata (§5). It registers nothing and decides
// nothing about access: its caller says whose archive an IQ reads, how the
// results reach the asker, and what of each archived message the asker may
// see, which are what differ between an account and a room.
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0313 and of what it is built with.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSForward  = "urn:xmpp:forward:0"                        // XEP-0297
	NSDelay    = "urn:xmpp:delay"                            // XEP-0203
	NSRSM      = "http://jabber.org/protocol/rsm"            // XEP-0059
	NSData     = "jabber:x:data"                             // XEP-0004
	NSValidate = "http://jabber.org/protocol/xdata-validate" // XEP-0122
	FieldText  = "{urn:xmpp:fulltext:0}fulltext"             // XEP-0431
)

// MaxPage is the most messages one query returns (XEP-0313 §4.3.1 lets a
// server limit it), also when the client asks for more or gives no <max/>.
const MaxPage = 250

// maxIDs bounds the ids field (#extended): a page holds at most the page
// cap anyway, and SQLite takes at most 32766 parameters in a statement.
const maxIDs = 250

// countLimit is how many matches a query for a page counts at most: the
// count costs a read of each match's index entry, and a client paging
// through a large archive needs no count (XEP-0059 §2.1 lets it be left
// out when it is exceptionally costly). Counting 10,000 matches takes about
// a millisecond when the index alone answers (an account, a bare JID, a
// time range), more when each match is read from the table (a full JID,
// words of full-text search).
const countLimit = 10000

// queryWait is how long a query waits for the one before it in its slot
// to end, before it is answered resource-constraint.
const queryWait = 30 * time.Second

// Server serves the queries of the archives in Store. Its zero slots are
// ready to use; one Server is shared by all the archives of a module, so
// that its slots hold across them.
type Server struct {
	Store storage.Archives
	Log   *slog.Logger
	// MaxPage caps the page size, at most the package's MaxPage: a
	// module lowers it so that a full page never overflows the queue of
	// the session that asked.
	MaxPage int

	slots Slots
}

// Request is one IQ of the namespace to an archive.
type Request struct {
	IQ *router.Stanza
	// Owner is the archive the IQ reads, and the 'from' of its results.
	Owner jid.JID
	// Slot names the queries that run one at a time: an account's (any
	// of its resources), or one asker's of a room.
	Slot string
	// Deliver sends one result to the asker, in order, before the IQ
	// answer; false when the asker is gone, and the query stops
	// unanswered.
	Deliver func(ctx context.Context, st *router.Stanza) bool
	// Present, if not nil, adapts each archived message (the parsed
	// stanza, changed in place) to what the asker may see of it.
	Present func(inner *router.Element, msg storage.ArchivedMessage)
}

// Serve answers req: a query (an IQ set with <query/>), the query form (a
// get of <query/>) or the archive's metadata (a get of <metadata/>). It
// returns the IQ answer, or nil when there is none to send because the
// asker is gone. Any other payload is feature-not-implemented.
func (s *Server) Serve(ctx context.Context, req Request) *router.Stanza {
	iq := req.IQ
	el := iq.FirstChild()
	switch {
	case el == nil || el.Name.Space != NS:
	case iq.Type() == string(stanza.SetIQ) && el.Name.Local == "query":
		return s.query(ctx, req, el)
	case iq.Type() == string(stanza.GetIQ) && el.Name.Local == "query":
		return iq.Reply(router.NewElement(NS, "query").Append(Form()))
	case iq.Type() == string(stanza.GetIQ) && el.Name.Local == "metadata":
		return s.metadata(ctx, req)
	}
	return iq.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "")
}

// Form is the form of the fields a query may use (XEP-0313 §4.1.5): those
// of the XEP, with #extended, and XEP-0431's full-text search.
func Form() *router.Element {
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

// maxPage is the page cap of s.
func (s *Server) maxPage() int {
	if s.MaxPage > 0 && s.MaxPage < MaxPage {
		return s.MaxPage
	}
	return MaxPage
}

// query runs a query (§4): the page of results goes to the asker only, as
// messages, then the IQ result with <fin/>.
func (s *Server) query(ctx context.Context, req Request, el *router.Element) *router.Stanza {
	iq := req.IQ
	q, flip, qe := parseQuery(el, s.maxPage())
	if qe != nil {
		return iq.ErrorReply(router.DefaultErrorType(qe.cond), qe.cond, qe.text)
	}
	if q.Max > 0 {
		// A query for a page counts up to countLimit matches; one for the
		// count alone (max 0, XEP-0059 §2.6) is answered exactly.
		q.CountLimit = countLimit
	}
	page, qerr := s.read(ctx, req, q)
	if qerr != nil {
		return iq.ErrorReply(router.DefaultErrorType(qerr.cond), qerr.cond, qerr.text)
	}
	queryID := el.Get("queryid")
	order := page.Messages
	if flip {
		order = slices.Clone(order)
		slices.Reverse(order)
	}
	for _, msg := range order {
		res, err := result(req, queryID, msg)
		if err != nil {
			s.Log.Error("archive: unreadable message", slog.String("owner", req.Owner.String()),
				slog.String("id", msg.ID), slog.Any("err", err))
			continue
		}
		if !req.Deliver(ctx, res) {
			return nil // the asker is gone
		}
	}
	return iq.Reply(fin(page))
}

// read runs q on the store, one query of a slot at a time (clients page
// one query after the other, and an account with many resources must not
// take the database's connections from everyone else), and holds the slot
// only while it reads: the results are delivered after.
func (s *Server) read(ctx context.Context, req Request, q storage.ArchiveQuery) (storage.ArchivePage, *queryError) {
	wctx, cancel := context.WithTimeout(ctx, queryWait)
	release, err := s.slots.Acquire(wctx, req.Slot)
	cancel()
	if err != nil {
		return storage.ArchivePage{}, &queryError{stanza.ResourceConstraint, "another query of yours is running"}
	}
	defer release()
	owner := req.Owner
	page, err := s.Store.Query(ctx, owner, q)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.ArchivePage{}, &queryError{stanza.ItemNotFound, ""}
	case err != nil:
		s.Log.Error("query archive", slog.String("owner", owner.String()), slog.Any("err", err))
		return storage.ArchivePage{}, &queryError{stanza.InternalServerError, ""}
	}
	if len(q.IDs) > 0 {
		// §4.1.3: an id of 'ids' that is not in the archive is
		// item-not-found, where the store skips it.
		if missing, err := s.missingIDs(ctx, owner, q.IDs, page.Count); err != nil {
			s.Log.Error("query archive", slog.String("owner", owner.String()), slog.Any("err", err))
			return storage.ArchivePage{}, &queryError{stanza.InternalServerError, ""}
		} else if missing {
			return storage.ArchivePage{}, &queryError{stanza.ItemNotFound, ""}
		}
	}
	return page, nil
}

// missingIDs tells whether one of ids is not in owner's archive, given
// that a query with them and maybe other filters matched found messages.
func (s *Server) missingIDs(ctx context.Context, owner jid.JID, ids []string, found int) (bool, error) {
	unique := len(slices.Compact(slices.Sorted(slices.Values(ids))))
	if found >= unique {
		return false, nil
	}
	all, err := s.Store.Query(ctx, owner, storage.ArchiveQuery{IDs: ids})
	if err != nil {
		return false, err
	}
	return all.Count < unique, nil
}

// result is the message that carries one archived message to the asker
// (§4.2): a <result/> with the archive id and the query's id around the
// message forwarded (XEP-0297) with the time it was archived (XEP-0203).
func result(req Request, queryID string, msg storage.ArchivedMessage) (*router.Stanza, error) {
	inner, err := router.ParseElement(msg.Stanza, router.NSClient)
	if err != nil {
		return nil, err
	}
	if req.Present != nil {
		req.Present(inner, msg)
	}
	r := router.NewElement(NS, "result", "queryid", queryID, "id", msg.ID)
	r.Append(router.NewElement(NSForward, "forwarded").Append(
		router.NewElement(NSDelay, "delay", "stamp", Stamp(msg.Stamp)), inner))
	to := req.IQ.From
	e := router.NewElement("", router.KindMessage, "from", req.Owner.String(), "to", to.String(), "id", router.NewID())
	e.Append(r)
	return &router.Stanza{Element: e, From: req.Owner, To: to}, nil
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
func (s *Server) metadata(ctx context.Context, req Request) *router.Stanza {
	b, err := s.Store.Bounds(ctx, req.Owner)
	if err != nil {
		s.Log.Error("archive bounds", slog.String("owner", req.Owner.String()), slog.Any("err", err))
		return req.IQ.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	md := router.NewElement(NS, "metadata")
	if b.FirstID != "" {
		md.Append(router.NewElement(NS, "start", "id", b.FirstID, "timestamp", Stamp(b.FirstStamp)),
			router.NewElement(NS, "end", "id", b.LastID, "timestamp", Stamp(b.LastStamp)))
	}
	return req.IQ.Reply(md)
}

// Stamp formats t as a XEP-0082 DateTime in UTC, to the microsecond.
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z") }
