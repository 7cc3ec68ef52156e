package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// enableMetrics turns /metrics on, readable by allow (nil: the default,
// loopback).
func enableMetrics(allow ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Web.Metrics = config.Metrics{Enabled: true, Allow: allow}
	}
}

// getMetrics fetches /metrics from the server's plain HTTP listener.
func getMetrics(t *testing.T, s *testserver.Server, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr(config.ListenerHTTP).String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return res.StatusCode, string(body)
}

// sample finds the value of the series of family name whose labels
// include want, or fails.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no series %s%v", name, want)
	return nil
}

// value is a gauge's or a counter's value.
func value(m *dto.Metric) float64 {
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// TestMetrics logs clients in (one with a wrong password), exchanges a
// message and checks that /metrics parses as the Prometheus text format
// and counts what happened.
func TestMetrics(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, enableMetrics())
		s.AddUser("alice", "pw-a")
		s.AddUser("bob", "pw-b")
		if _, err := s.Dial("alice", "wrong", testserver.LoginOptions{}); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
		alice := s.Login("alice", "pw-a", testserver.LoginOptions{})
		bob := s.Login("bob", "pw-b", testserver.LoginOptions{})
		alice.MustSend(t, fmt.Sprintf(`<message xmlns='jabber:client' to='%s' type='chat' id='m1'><body>hi</body></message>`, bob.LocalAddr()))
		bob.MustNext(t, "alice's message", func(e *router.Element) bool { return e.Name.Local == router.KindMessage })

		status, body := getMetrics(t, s, nil)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", status, body)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("/metrics does not parse: %v\n%s", err, body)
		}
		atLeast := []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"xmppd_c2s_sessions", map[string]string{"transport": "tcp"}, 2},
			{"xmppd_c2s_logins_total", map[string]string{"result": "success"}, 1},
			{"xmppd_c2s_logins_total", map[string]string{"result": "failure"}, 1},
			{"xmppd_c2s_stanzas_total", map[string]string{"direction": "in", "kind": "message"}, 1},
			{"xmppd_c2s_stanzas_total", map[string]string{"direction": "out", "kind": "message"}, 1},
			{"xmppd_c2s_stanzas_total", map[string]string{"direction": "in", "kind": "presence"}, 0},
			{"xmppd_c2s_hibernating_sessions", nil, 0},
			{"xmppd_c2s_queue_drops_total", nil, 0},
			{"xmppd_s2s_streams", map[string]string{"direction": "out", "auth": "dialback"}, 0},
			{"xmppd_s2s_stanzas_total", map[string]string{"direction": "in", "kind": "iq"}, 0},
			{"xmppd_s2s_queue_drops_total", nil, 0},
			{"xmppd_upload_bytes_total", map[string]string{"direction": "stored"}, 0},
			{"go_goroutines", nil, 1},
		}
		for _, tt := range atLeast {
			if v := value(sample(t, fams, tt.name, tt.labels)); v < tt.min {
				t.Errorf("%s%v = %v, want at least %v", tt.name, tt.labels, v, tt.min)
			}
		}
		if v := value(sample(t, fams, "xmppd_c2s_sessions", map[string]string{"transport": "tcp"})); v != 2 {
			t.Errorf("tcp sessions = %v, want 2", v)
		}
		// Three logins read the account; the message was archived (mam).
		for op, min := range map[string]uint64{"user_get": 3, "archive_append": 1, "write": 1} {
			h := sample(t, fams, "xmppd_storage_operation_seconds", map[string]string{"op": op}).GetHistogram()
			if h.GetSampleCount() < min || h.GetSampleSum() <= 0 {
				t.Errorf("storage op %s: %d samples summing to %vs, want at least %d", op, h.GetSampleCount(), h.GetSampleSum(), min)
			}
		}
	})
}

// TestMetricsAccess checks who may read /metrics: nobody while it is
// disabled, by default loopback only, and with a trusted proxy the client
// it forwards for.
func TestMetricsAccess(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		header map[string]string
		status int
		says   string
	}{
		{"disabled", nil, nil, http.StatusNotFound, ""},
		{"loopback by default", enableMetrics(), nil, http.StatusOK, "xmppd_c2s_sessions"},
		{"not in allow", enableMetrics("10.0.0.0/8"), nil, http.StatusForbidden, "web.metrics.allow"},
		{"untrusted forwarded-for is ignored", enableMetrics("192.0.2.0/24"),
			map[string]string{"X-Forwarded-For": "192.0.2.7"}, http.StatusForbidden, "127.0.0.1 may not"},
		{"client behind a trusted proxy", func(c *config.Config) {
			enableMetrics("192.0.2.0/24")(c)
			c.Web.TrustedProxies = []string{"127.0.0.1"}
		}, map[string]string{"X-Forwarded-For": "192.0.2.7"}, http.StatusOK, "xmppd_c2s_sessions"},
		{"other client behind a trusted proxy", func(c *config.Config) {
			enableMetrics("192.0.2.0/24")(c)
			c.Web.TrustedProxies = []string{"127.0.0.1"}
		}, map[string]string{"X-Forwarded-For": "198.51.100.1"}, http.StatusForbidden, "198.51.100.1 may not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testserver.Start(t, tt.mutate)
			status, body := getMetrics(t, s, tt.header)
			if status != tt.status || !strings.Contains(body, tt.says) {
				t.Errorf("GET /metrics: %d %q, want %d saying %q", status, body, tt.status, tt.says)
			}
		})
	}
}
