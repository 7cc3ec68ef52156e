package upload

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// defaultType is the type of a file whose slot request named none
// (XEP-0363 §6 lets the service assume it).
const defaultType = "application/octet-stream"

// maxNameBytes bounds a file name, as most file systems do.
const maxNameBytes = 255

// discoInfo answers disco#info on the service (XEP-0363 §4): the store/file
// identity, the feature and the max-file-size form (XEP-0128).
func (u *Upload) discoInfo(_ context.Context, iq *router.Stanza) *router.Stanza {
	if iq.FirstChild().Get("node") != "" {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	q := router.NewElement(nsInfo, "query")
	q.Append(router.NewElement(nsInfo, "identity", "category", "store", "type", "file", "name", "HTTP File Upload"))
	q.Append(router.NewElement(nsInfo, "feature", "var", nsInfo))
	q.Append(router.NewElement(nsInfo, "feature", "var", NS))
	x := router.NewElement(nsData, "x", "type", "result")
	x.Append(
		router.NewElement(nsData, "field", "var", "FORM_TYPE", "type", "hidden").Append(
			router.NewElement(nsData, "value").AppendText(NS)),
		router.NewElement(nsData, "field", "var", "max-file-size").Append(
			router.NewElement(nsData, "value").AppendText(strconv.FormatInt(u.opts.MaxFileSize, 10))),
	)
	q.Append(x)
	return iq.Reply(q)
}

// discoItems answers disco#items on the service: it has none.
func (u *Upload) discoItems(_ context.Context, iq *router.Stanza) *router.Stanza {
	if iq.FirstChild().Get("node") != "" {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	return iq.Reply(router.NewElement(nsItems, "query"))
}

// requestSlot answers a slot request (XEP-0363 §5) with a PUT and a GET
// URL, or with the XEP's errors.
func (u *Upload) requestSlot(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !u.mayUpload(iq.From) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden,
			fmt.Sprintf("only accounts of %s may upload files here", strings.Join(u.domains, ", ")))
	}
	req := iq.FirstChild()
	if req.Name.Local != "request" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "expected a <request/>")
	}
	name, err := cleanName(req.Get("filename"))
	if err != nil {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, err.Error())
	}
	size, err := strconv.ParseInt(req.Get("size"), 10, 64)
	if err != nil || size < 0 {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "size must be a whole number of bytes")
	}
	ctype, err := cleanType(req.Get("content-type"))
	if err != nil {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, err.Error())
	}
	if size > u.opts.MaxFileSize {
		return fileTooLarge(iq, u.opts.MaxFileSize)
	}
	now := u.now()
	slot := storage.Upload{ID: newID(), Owner: iq.From.Bare(), Name: name, Size: size, ContentType: ctype, Created: now}
	var limit *limitError
	err = u.h.Store().Uploads().Reserve(ctx, slot, now.Add(-24*time.Hour), func(usage storage.UploadUsage) error {
		limit = u.checkLimits(usage, size, now)
		if limit != nil {
			return limit
		}
		return nil
	})
	switch {
	case limit != nil:
		return limit.reply(iq)
	case errors.Is(err, storage.ErrNotFound):
		// The account was deleted while its session lives on.
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "no such account")
	case err != nil:
		u.h.Logger().Error("upload: reserve slot", "account", slot.Owner.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	base := u.baseURL(iq.From.Domainpart())
	put, get := u.urls(base, slot, now)
	u.h.Logger().Debug("upload slot", "account", slot.Owner.String(), "id", slot.ID, "size", size, "type", ctype)
	res := router.NewElement(NS, "slot")
	res.Append(router.NewElement(NS, "put", "url", put), router.NewElement(NS, "get", "url", get))
	return iq.Reply(res)
}

// fileTooLarge is XEP-0363 §8's first error.
func fileTooLarge(iq *router.Stanza, max int64) *router.Stanza {
	r := iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, fmt.Sprintf("File too large. The maximum file size is %d bytes", max))
	r.Child("", "error").Append(router.NewElement(NS, "file-too-large").Append(
		router.NewElement(NS, "max-file-size").AppendText(strconv.FormatInt(max, 10))))
	return r
}

// limitError is a quota or daily limit the slot would pass: a temporary
// error (XEP-0363 §8) with when to retry, since files expire and days
// pass.
type limitError struct {
	text  string
	retry time.Time // zero: nothing frees up by itself
}

func (e *limitError) Error() string { return e.text }

func (e *limitError) reply(iq *router.Stanza) *router.Stanza {
	r := iq.ErrorReply(stanza.Wait, stanza.ResourceConstraint, e.text)
	if !e.retry.IsZero() {
		r.Child("", "error").Append(router.NewElement(NS, "retry", "stamp", e.retry.UTC().Format(time.RFC3339)))
	}
	return r
}

// checkLimits checks a new slot of size bytes against the account's usage.
func (u *Upload) checkLimits(usage storage.UploadUsage, size int64, now time.Time) *limitError {
	if q := u.opts.Quota; q > 0 && usage.Bytes+size > q {
		e := &limitError{text: fmt.Sprintf("Quota reached: your files take %d of your %d bytes; this one needs %d", usage.Bytes, q, size)}
		if exp := u.opts.ExpireAfter.Duration(); exp > 0 && !usage.Oldest.IsZero() {
			e.retry = usage.Oldest.Add(exp + u.opts.SlotTimeout)
		}
		return e
	}
	if q := u.opts.DailyQuota; q > 0 && usage.RecentBytes+size > q {
		e := &limitError{text: fmt.Sprintf("Daily limit reached: you may upload %d bytes in 24 hours and have asked for %d; this one needs %d", q, usage.RecentBytes, size)}
		if !usage.RecentOldest.IsZero() {
			e.retry = usage.RecentOldest.Add(24 * time.Hour)
		}
		return e
	}
	return nil
}

// newID returns a slot ID: 128 random bits, URL-safe (idPattern).
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validID tells whether s is the form newID makes, so that nothing else
// ever names a file.
func validID(s string) bool {
	if len(s) != 22 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cleanName checks a client's file name and makes it safe for a URL path
// segment and a header: valid UTF-8 of at most maxNameBytes, with path
// separators and control characters replaced. It never names a file on
// disk, but clients show it, so "../x" does not survive either.
func cleanName(s string) (string, error) {
	if s == "" {
		return "", errors.New("filename is required")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("filename is not valid UTF-8")
	}
	if len(s) > maxNameBytes {
		return "", fmt.Errorf("filename is longer than %d bytes", maxNameBytes)
	}
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) || r == utf8.RuneError {
			return '_'
		}
		return r
	}, s)
	if strings.Trim(s, ". ") == "" {
		return "file", nil
	}
	return s, nil
}

// cleanType checks a slot's content type: a media type with its
// parameters, or the default when the client gave none.
func cleanType(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return defaultType, nil
	}
	if len(s) > 255 {
		return "", errors.New("content-type is too long")
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", fmt.Errorf("content-type %q is not a media type", s)
	}
	return mime.FormatMediaType(mt, params), nil
}

// baseURL is where the URLs of a slot for an account of domain point.
func (u *Upload) baseURL(domain string) string {
	if b := u.opts.PublicURL; b != "" {
		return strings.TrimSuffix(b, "/")
	}
	if b := u.h.Config().Web.PublicURL; b != "" {
		return strings.TrimSuffix(b, "/")
	}
	scheme, port, ok := "https", 0, false
	if port, ok = u.listenerPort(true); !ok {
		scheme = "http"
		port, ok = u.listenerPort(false)
	}
	host := domain
	if ok && !(scheme == "https" && port == 443 || scheme == "http" && port == 80) {
		host += ":" + strconv.Itoa(port)
	}
	return scheme + "://" + host
}

// listenerPort is the port of the first https (secure) or http listener:
// the one being served, or, in the moment before the listeners are served,
// the configured one.
func (u *Upload) listenerPort(secure bool) (int, bool) {
	if p, ok := u.h.HTTPPort(secure); ok {
		return p, true
	}
	want := config.ListenerHTTP
	if secure {
		want = config.ListenerHTTPS
	}
	for _, l := range u.h.Config().Listeners {
		if l.Type != want {
			continue
		}
		_, port, err := net.SplitHostPort(l.Address)
		if p, perr := strconv.Atoi(port); err == nil && perr == nil && p > 0 {
			return p, true
		}
	}
	return 0, false
}

// urls builds the slot's PUT and GET URLs: the ID and the escaped name as
// path segments, the expiry and HMAC as the query.
func (u *Upload) urls(base string, slot storage.Upload, now time.Time) (put, get string) {
	path := base + Path + slot.ID + "/" + url.PathEscape(slot.Name)
	putExp := now.Add(u.opts.SlotTimeout).Unix()
	put = path + "?" + url.Values{"e": {strconv.FormatInt(putExp, 10)}, "s": {u.sign(opPut, slot.ID, slot.Name, putExp)}}.Encode()
	var getExp int64
	if exp := u.opts.ExpireAfter.Duration(); exp > 0 {
		// The file is deleted ExpireAfter after its upload, which may
		// come up to SlotTimeout after now.
		getExp = now.Add(u.opts.SlotTimeout + exp).Unix()
	}
	q := url.Values{"s": {u.sign(opGet, slot.ID, slot.Name, getExp)}}
	if getExp != 0 {
		q.Set("e", strconv.FormatInt(getExp, 10))
	}
	get = path + "?" + q.Encode()
	return put, get
}
