package modules_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/web"
)

// webModule serves a route and a host-meta link, as upload or BOSH will.
type webModule struct{}

func (*webModule) Start(_ context.Context, h *modules.Host) error {
	if err := h.HandleHTTP(web.Route{Pattern: "GET /test-web", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "from a module")
	})}); err != nil {
		return err
	}
	return h.AddLink(web.Link{Rel: web.RelBOSH, Path: "/test-bind"})
}

func init() { modules.Register("test-web", func() *webModule { return new(webModule) }) }

func serve(w *web.Server, path string) (int, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://localhost"+path, nil)
	req.RemoteAddr = "127.0.0.1:1234"
	w.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestModuleWebRoutes: a module's routes and links are served while it
// runs and gone once it stops, like its other registrations.
func TestModuleWebRoutes(t *testing.T) {
	cfg := config.Default()
	log := slog.New(slog.DiscardHandler)
	w, err := web.New(web.Options{Config: cfg.Web, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	set, err := modules.Start(context.Background(), []string{"test-web"}, newRouter(t), nil, cfg, log, w)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := serve(w, "/test-web"); code != http.StatusOK || body != "from a module" {
		t.Errorf("route: %d %q", code, body)
	}
	if _, body := serve(w, "/.well-known/host-meta.json"); !strings.Contains(body, "http://localhost/test-bind") {
		t.Errorf("host-meta %s lacks the module's link", body)
	}
	if err := set.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, _ := serve(w, "/test-web"); code != http.StatusNotFound {
		t.Errorf("route after stop: %d, want 404", code)
	}
	if _, body := serve(w, "/.well-known/host-meta.json"); strings.Contains(body, "test-bind") {
		t.Errorf("host-meta %s still lists the stopped module's link", body)
	}
}

// TestModuleWebWithoutServer: without a web server, HandleHTTP fails the
// module's start rather than dropping the route silently.
func TestModuleWebWithoutServer(t *testing.T) {
	_, err := modules.Start(context.Background(), []string{"test-web"}, newRouter(t), nil, config.Default(), slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "no web server") {
		t.Errorf("start without a web server: %v", err)
	}
}
