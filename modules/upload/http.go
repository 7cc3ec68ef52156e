package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/web"
)

// ServeHTTP serves Path/ID/NAME: the PUT of a slot, the GET (and HEAD) of
// its file, and the CORS preflight of web clients. Every refusal is a 4xx
// with a line of text saying why.
func (u *Upload) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cors(w.Header())
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		u.put(w, r)
	case http.MethodGet, http.MethodHead:
		u.get(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed: use PUT to upload, GET to download", http.StatusMethodNotAllowed)
	}
}

// cors lets web clients of any origin upload and download (XEP-0363 §10):
// the URLs are the credentials, so no cookie is involved.
func cors(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Type, Content-Disposition, Content-Range, Accept-Ranges, ETag")
	h.Set("Access-Control-Max-Age", "86400")
}

// authorize checks the request's ID, signature and expiry for op and
// returns the slot's record, or answers the request and returns false.
func (u *Upload) authorize(w http.ResponseWriter, r *http.Request, op string) (storage.Upload, bool) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !validID(id) {
		http.Error(w, "not found: no such upload", http.StatusNotFound)
		return storage.Upload{}, false
	}
	q := r.URL.Query()
	var expires int64
	if e := q.Get("e"); e != "" || op == opPut {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "forbidden: the URL has no valid expiry", http.StatusForbidden)
			return storage.Upload{}, false
		}
		expires = n
	}
	if !u.verify(q.Get("s"), op, id, name, expires) {
		http.Error(w, "forbidden: the URL's signature is not valid", http.StatusForbidden)
		return storage.Upload{}, false
	}
	if expires != 0 && u.now().Unix() > expires {
		http.Error(w, "forbidden: the URL has expired", http.StatusForbidden)
		return storage.Upload{}, false
	}
	slot, err := u.h.Store().Uploads().Get(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		http.Error(w, "not found: no such upload (expired or deleted)", http.StatusNotFound)
		return storage.Upload{}, false
	}
	if err != nil {
		u.h.Logger().Error("upload: look up slot", "id", id, "err", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return storage.Upload{}, false
	}
	return slot, true
}

// path is where a slot's file is, and tmp where its PUT writes first.
func (u *Upload) path(slot storage.Upload) string {
	return filepath.Join(u.root, accountDir(slot.Owner), slot.ID)
}

// put accepts a slot's one upload, of exactly its size and type.
func (u *Upload) put(w http.ResponseWriter, r *http.Request) {
	slot, ok := u.authorize(w, r, opPut)
	if !ok {
		return
	}
	if !slot.Uploaded.IsZero() {
		http.Error(w, "conflict: this slot was uploaded already", http.StatusConflict)
		return
	}
	if r.ContentLength < 0 {
		http.Error(w, "length required: send Content-Length", http.StatusLengthRequired)
		return
	}
	if r.ContentLength != slot.Size {
		http.Error(w, fmt.Sprintf("bad request: Content-Length %d does not match the slot's size %d", r.ContentLength, slot.Size), http.StatusBadRequest)
		return
	}
	if got := putType(r.Header.Get("Content-Type")); !strings.EqualFold(got, slot.ContentType) {
		http.Error(w, fmt.Sprintf("unsupported media type: Content-Type %q does not match the slot's %q", got, slot.ContentType), http.StatusUnsupportedMediaType)
		return
	}
	ctx := r.Context()
	store := u.h.Store().Uploads()
	if err := store.Claim(ctx, slot.ID); errors.Is(err, storage.ErrExists) {
		http.Error(w, "conflict: this slot is being or was uploaded already", http.StatusConflict)
		return
	} else if err != nil {
		u.fail(w, "claim slot", slot.ID, err)
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(u.opts.TransferTimeout)
	rc.SetReadDeadline(deadline)
	rc.SetWriteDeadline(deadline)
	if status, msg, err := u.write(slot, r.Body); err != nil {
		// Not ctx: the client may be gone, the slot must be freed anyway.
		if rerr := store.Release(context.WithoutCancel(ctx), slot.ID); rerr != nil {
			u.h.Logger().Error("upload: release slot", "id", slot.ID, "err", rerr)
		}
		if status == http.StatusInternalServerError {
			u.fail(w, "write file", slot.ID, err)
			return
		}
		if !web.BodyTooLarge(w, err) {
			http.Error(w, msg, status)
		}
		return
	}
	if err := store.Complete(context.WithoutCancel(ctx), slot.ID, u.now()); err != nil {
		os.Remove(u.path(slot))
		if errors.Is(err, storage.ErrNotFound) {
			http.Error(w, "gone: the slot was deleted during the upload", http.StatusGone)
			return
		}
		u.fail(w, "complete upload", slot.ID, err)
		return
	}
	u.h.Logger().Info("file uploaded", "account", slot.Owner.String(), "id", slot.ID, "bytes", slot.Size)
	w.WriteHeader(http.StatusCreated)
}

// putType is a PUT's Content-Type as the slot's is written, so that
// "Image/JPEG" and "image/jpeg" compare equal; none is the default type.
func putType(s string) string {
	if strings.TrimSpace(s) == "" {
		return defaultType
	}
	if t, err := cleanType(s); err == nil {
		return t
	}
	return s
}

// write stores body, slot.Size bytes, as the slot's file: into a temporary
// file first, renamed when complete, so that a file is never served half
// written. It returns the status and text to answer a client error with.
func (u *Upload) write(slot storage.Upload, body io.Reader) (int, string, error) {
	final := u.path(slot)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return http.StatusInternalServerError, "", err
	}
	tmp := final + partSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return http.StatusInternalServerError, "", err
	}
	n, err := io.Copy(f, body)
	if err == nil && n != slot.Size {
		err = fmt.Errorf("body of %d bytes, not %d", n, slot.Size)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return http.StatusBadRequest, fmt.Sprintf("bad request: the body ended after %d of %d bytes", n, slot.Size), err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return http.StatusInternalServerError, "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return http.StatusInternalServerError, "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return http.StatusInternalServerError, "", err
	}
	u.stored.Add(uint64(n))
	return 0, "", nil
}

// partSuffix marks a file being written.
const partSuffix = ".part"

func (u *Upload) fail(w http.ResponseWriter, what, id string, err error) {
	u.h.Logger().Error("upload: "+what, "id", id, "err", err)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

// get serves an uploaded file with its type, length and ranges
// (http.ServeContent), as an attachment unless its type is safe to show.
func (u *Upload) get(w http.ResponseWriter, r *http.Request) {
	slot, ok := u.authorize(w, r, opGet)
	if !ok {
		return
	}
	if slot.Uploaded.IsZero() {
		http.Error(w, "not found: the file has not been uploaded yet", http.StatusNotFound)
		return
	}
	if exp := u.opts.ExpireAfter.Duration(); exp > 0 && u.now().After(slot.Uploaded.Add(exp)) {
		http.Error(w, "not found: the file has expired", http.StatusNotFound)
		return
	}
	f, err := os.Open(u.path(slot))
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, "not found: the file is gone", http.StatusNotFound)
		return
	}
	if err != nil {
		u.fail(w, "open file", slot.ID, err)
		return
	}
	defer f.Close()
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(u.opts.TransferTimeout))
	h := w.Header()
	ctype, inline := servedType(slot.ContentType)
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", disposition(inline, slot.Name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	h.Set("ETag", `"`+slot.ID+`"`)
	http.ServeContent(&countingWriter{ResponseWriter: w, n: &u.served}, r, "", slot.Uploaded, f)
}

// countingWriter counts into n the body bytes of a successful response
// written through it: the file's, not those of an error page.
type countingWriter struct {
	http.ResponseWriter
	n      *atomic.Uint64
	failed bool
}

func (c *countingWriter) WriteHeader(code int) {
	c.failed = code >= 300
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.ResponseWriter.Write(p)
	c.count(int64(k))
	return k, err
}

// ReadFrom keeps the underlying writer's io.ReaderFrom (sendfile for a
// file over plain HTTP), which ServeContent uses when it is there.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var k int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		k, err = rf.ReadFrom(r)
	} else {
		k, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.count(k)
	return k, err
}

func (c *countingWriter) count(k int64) {
	if !c.failed {
		c.n.Add(uint64(k))
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// inlineTypes are shown by browsers without running anything: pictures,
// sound, video and plain text. Everything else is served as an attachment.
var inlineTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/avif": true,
	"image/heic": true, "image/bmp": true, "text/plain": true,
}

// activeTypes are types a browser would run as a page or a script even
// as an attachment opened later; they are served as bytes.
var activeTypes = map[string]bool{
	"text/html": true, "application/xhtml+xml": true, "image/svg+xml": true, "text/xml": true,
	"application/xml": true, "text/javascript": true, "application/javascript": true,
	"application/ecmascript": true, "text/ecmascript": true, "multipart/x-mixed-replace": true,
}

// servedType is the Content-Type a stored type is served with, and
// whether the file may be shown inline.
func servedType(stored string) (ctype string, inline bool) {
	mt, _, err := mime.ParseMediaType(stored)
	if err != nil || activeTypes[mt] || strings.HasSuffix(mt, "+xml") || strings.Contains(mt, "script") {
		return defaultType, false
	}
	major, _, _ := strings.Cut(mt, "/")
	return stored, inlineTypes[mt] || major == "audio" || major == "video"
}

// disposition is a Content-Disposition for any file name (RFC 6266): an
// ASCII fallback in filename, and the name itself in filename* (RFC 8187).
func disposition(inline bool, name string) string {
	kind := "attachment"
	if inline {
		kind = "inline"
	}
	fallback := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' || r == ';' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, fallback, rfc8187(name))
}

// rfc8187 percent-encodes everything but RFC 8187's attr-char.
func rfc8187(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
