package s2s_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/s2s"
)

// peer starts a server for b.test with s2s listeners on free ports and
// returns it; mutate may change its configuration.
func peer(t *testing.T, mutate func(*config.Config)) *testserver.Server {
	t.Helper()
	return testserver.Start(t, func(c *config.Config) {
		c.Hosts = []config.Host{{Domain: domainB}}
		c.Listeners = append(c.Listeners,
			config.Listener{Type: config.ListenerS2SStartTLS, Address: "127.0.0.1:0"},
			config.Listener{Type: config.ListenerS2SDirectTLS, Address: "127.0.0.1:0"})
		if mutate != nil {
			mutate(c)
		}
	})
}

// checker builds an s2s.Server for check.test the way `xmppd s2s check`
// does: from a configuration, with no router and nothing started.
func checker(t *testing.T, mutate func(*config.Config)) *s2s.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hosts = []config.Host{{Domain: "check.test"}}
	mutate(cfg)
	cs, err := certs.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s2s.New(s2s.Options{Config: cfg, Certs: cs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return srv
}

// TestCheck runs the checks of `xmppd s2s check` against peers that
// differ in certificate, policy and port kind, and reads the report.
func TestCheck(t *testing.T) {
	ca := testserver.NewCA(t)
	caCert, caKey := ca.Issue(domainB)
	checkCert, checkKey := ca.Issue("check.test")
	selfSigned := peer(t, nil)
	issued := peer(t, func(c *config.Config) {
		c.Hosts[0].Cert, c.Hosts[0].Key = caCert, caKey
		c.S2S.CAFile = ca.File
	})
	strict := peer(t, func(c *config.Config) { c.S2S.Auth = config.S2SAuthRequireCert })
	addr := func(s *testserver.Server, typ string) string { return s.Addr(typ).String() }

	tests := []struct {
		name    string
		route   string
		checker func(*config.Config) // besides the route
		// What the report must say.
		directTLS bool
		certErr   error // nil for a valid certificate
		external  bool
		dialback  bool
		auth      string // a prefix; "" for none
		lines     []string
	}{
		{
			name:     "self-signed peer, dialback allowed",
			route:    addr(selfSigned, config.ListenerS2SStartTLS),
			certErr:  s2s.ErrUntrusted,
			dialback: true,
			auth:     "dialback",
			lines:    []string{"(STARTTLS)", "tls:          TLS 1.3", "certificate:  NOT valid for b.test", "offers:       SASL EXTERNAL no, dialback yes", "would use:    dialback"},
		},
		{
			name:     "self-signed peer, certificate required",
			route:    addr(selfSigned, config.ListenerS2SStartTLS),
			checker:  func(c *config.Config) { c.S2S.Auth = config.S2SAuthRequireCert },
			certErr:  s2s.ErrUntrusted,
			dialback: true,
			lines:    []string{"certificate:  NOT valid for b.test", "would use:    nothing: the certificate does not validate"},
		},
		{
			name:  "both certificates from a trusted CA",
			route: addr(issued, config.ListenerS2SStartTLS),
			checker: func(c *config.Config) {
				c.Hosts[0].Cert, c.Hosts[0].Key = checkCert, checkKey
				c.S2S.CAFile = ca.File
			},
			external: true,
			dialback: true,
			auth:     "SASL EXTERNAL",
			lines:    []string{"certificate:  valid for b.test", "offers:       SASL EXTERNAL yes, dialback yes", "would use:    SASL EXTERNAL"},
		},
		{
			// The peer requires a certificate and ours is self-signed:
			// it must offer nothing, neither in its features nor by
			// declaring the dialback namespace (XEP-0220 §2.4.1).
			name:    "peer requires a certificate we lack",
			route:   addr(strict, config.ListenerS2SStartTLS),
			certErr: s2s.ErrUntrusted,
			lines:   []string{"offers:       SASL EXTERNAL no, dialback no", "would use:    nothing: the peer offers neither"},
		},
		{
			name:      "direct TLS route",
			route:     "tls://" + addr(selfSigned, config.ListenerS2SDirectTLS),
			directTLS: true,
			certErr:   s2s.ErrUntrusted,
			dialback:  true,
			auth:      "dialback",
			lines:     []string{"(direct TLS)", "tls:          TLS 1.3", "would use:    dialback"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := checker(t, func(c *config.Config) {
				c.S2S.Routes = map[string]string{domainB: tt.route}
				if tt.checker != nil {
					tt.checker(c)
				}
			})
			rep, err := srv.Check(t.Context(), "check.test", domainB)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Logf("report:\n%s", out.String())
			if rep.Target.DirectTLS != tt.directTLS || !rep.TLS || rep.Version != "TLS 1.3" {
				t.Errorf("target %+v, TLS %v %q; want direct TLS %v over TLS 1.3", rep.Target, rep.TLS, rep.Version, tt.directTLS)
			}
			switch {
			case tt.certErr == nil && rep.CertError != nil:
				t.Errorf("certificate error %v, want none", rep.CertError)
			case tt.certErr != nil && !errors.Is(rep.CertError, tt.certErr):
				t.Errorf("certificate error %v, want %v", rep.CertError, tt.certErr)
			}
			if rep.External != tt.external || rep.Dialback != tt.dialback {
				t.Errorf("offers EXTERNAL %v, dialback %v; want %v, %v", rep.External, rep.Dialback, tt.external, tt.dialback)
			}
			if !strings.HasPrefix(rep.Auth, tt.auth) || (tt.auth == "") != (rep.Auth == "") {
				t.Errorf("would use %q (%s), want %q", rep.Auth, rep.Why, tt.auth)
			}
			if rep.Auth == "" && rep.Why == "" {
				t.Error("no reason given for using nothing")
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("report lacks %q", l)
				}
			}
		})
	}
}

// xmppd builds the command into a temporary directory of the test.
func xmppd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the xmppd command")
	}
	bin := filepath.Join(t.TempDir(), "xmppd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/xmppd/xmppd/cmd/xmppd").CombinedOutput()
	if err != nil {
		t.Fatalf("build xmppd: %v\n%s", err, out)
	}
	return bin
}

// TestCheckCommand runs `xmppd s2s check` against a peer: it prints the
// report, and exits with status 1 when no authentication would work.
func TestCheckCommand(t *testing.T) {
	bin := xmppd(t)
	b := peer(t, nil)
	tests := []struct {
		policy   string
		wantCode int
		wantOut  string
	}{
		{policy: config.S2SAuthAllowDialback, wantCode: 0, wantOut: "would use:    dialback"},
		{policy: config.S2SAuthRequireCert, wantCode: 1, wantOut: "would use:    nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "xmppd.yaml")
			yaml := "data_dir: " + filepath.Join(dir, "data") + "\n" +
				"hosts:\n  - domain: check.test\n" +
				"s2s:\n  auth: " + tt.policy + "\n  routes:\n    b.test: \"" + b.Addr(config.ListenerS2SStartTLS).String() + "\"\n"
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "--config", cfg, "s2s", "check", domainB)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := errors.AsType[*exec.ExitError](err); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("stdout:\n%sstderr:\n%s", stdout.String(), stderr.String())
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stdout.String(), "tls:          TLS 1.3") {
				t.Errorf("output lacks %q or the TLS version", tt.wantOut)
			}
		})
	}
}
