package register_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/register"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

const nsRegisterFeature = "http://jabber.org/features/iq-register"

// rawWait is how long a test waits for the server to end a raw connection:
// generous, because it only bounds a failure, never measures a success.
const rawWait = 30 * time.Second

// openRegistration starts a server with in-band registration enabled.
func openRegistration(t *testing.T, b storetest.Backend, perIP int) *testserver.Server {
	t.Helper()
	return testserver.StartOn(t, b, func(c *config.Config) {
		c.SetModuleOptions("register", register.Options{AllowRegistration: true, PerIP: perIP, Window: time.Hour})
	})
}

// dialTLS opens a stream and negotiates STARTTLS on a raw connection, which
// then stands where a client registering would: after TLS, before SASL.
func dialTLS(t *testing.T, s *testserver.Server) *testserver.Raw {
	t.Helper()
	c, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func offersRegistration(features *router.Element) bool {
	return features.Child(nsRegisterFeature, "register") != nil
}

// rawRequest sends an IQ on a raw connection and returns the answer.
func rawRequest(t *testing.T, c *testserver.Raw, iq string) *router.Element {
	t.Helper()
	e, err := c.Request(iq)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// registerIQ is a registration set with the given query content.
func registerIQ(id, content string) string {
	return `<iq type='set' id='` + id + `'><query xmlns='jabber:iq:register'>` + content + `</query></iq>`
}

func accountExists(t *testing.T, s *testserver.Server, local string) bool {
	t.Helper()
	_, err := s.Store.Users().Get(context.Background(), testserver.Domain, local)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestRegistrationDisabled checks the default: no stream feature, and a
// registration request gets service-unavailable (XEP-0077 §3.1) on a stream
// that goes on, so the client can still log in.
func TestRegistrationDisabled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		wantNoSignup(t, testserver.StartOn(t, b, nil))
	})
}

// wantNoSignup checks that s offers no registration, answers registration
// requests before login with service-unavailable and creates no account,
// and that the stream goes on: alice can still log in and bind.
func wantNoSignup(t *testing.T, s *testserver.Server) {
	t.Helper()
	s.AddUser("alice", "pw")
	c := dialTLS(t, s)
	if offersRegistration(c.Features) {
		t.Errorf("registration offered: %s", c.Features)
	}
	e := rawRequest(t, c, `<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>`)
	testserver.WantIQError(t, e, "service-unavailable", "cancel")
	e = rawRequest(t, c, registerIQ("reg2", `<username>mallory</username><password>pw</password>`))
	testserver.WantIQError(t, e, "service-unavailable", "cancel")
	if accountExists(t, s, "mallory") {
		t.Error("account created without registration")
	}
	if cond, err := c.AuthPlain("alice", "pw"); err != nil || cond != "" {
		t.Fatalf("login after the refusal: %q %v", cond, err)
	}
	if _, err := c.Bind(""); err != nil {
		t.Fatal(err)
	}
}

// TestRegister registers an account in band and logs in with it.
func TestRegister(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := openRegistration(t, b, 10)
		raw, err := s.DialRaw()
		if err != nil {
			t.Fatal(err)
		}
		f, err := raw.Open(testserver.Header)
		if err != nil {
			t.Fatal(err)
		}
		if offersRegistration(f) {
			t.Errorf("registration offered before TLS: %s", f)
		}
		if err := raw.StartTLS(nil); err != nil {
			t.Fatal(err)
		}
		if !offersRegistration(raw.Features) {
			t.Fatalf("registration not offered after TLS: %s", raw.Features)
		}

		e := rawRequest(t, raw, `<iq type='get' id='reg1' to='localhost'><query xmlns='jabber:iq:register'/></iq>`)
		q := e.Child(ns, "query")
		if e.Get("type") != "result" || q == nil || q.Child(ns, "username") == nil ||
			q.Child(ns, "password") == nil || q.Child(ns, "instructions") == nil {
			t.Fatalf("fields: %s, want instructions, username and password", e)
		}
		if q.Child(ns, "registered") != nil {
			t.Errorf("an unauthenticated client is told it is registered: %s", e)
		}

		e = rawRequest(t, raw, registerIQ("reg2", `<username>Juliet</username><password>R0m30</password>`))
		if e.Get("type") != "result" {
			t.Fatalf("register: %s", e)
		}
		// The username is stored normalised (PRECIS).
		if !accountExists(t, s, "juliet") {
			t.Fatal("account not stored")
		}
		// §3.1.1: one account per stream.
		e = rawRequest(t, raw, registerIQ("reg3", `<username>romeo</username><password>pw</password>`))
		testserver.WantIQError(t, e, "not-acceptable", "modify")

		if cond, err := raw.AuthPlain("juliet", "R0m30"); err != nil || cond != "" {
			t.Fatalf("login on the registering stream: %q %v", cond, err)
		}
		if offersRegistration(raw.Features) {
			t.Errorf("registration offered after SASL: %s", raw.Features)
		}
		if _, err := raw.Bind(""); err != nil {
			t.Fatal(err)
		}
		// And a fresh login with a real client.
		c := s.Login("juliet", "R0m30", testserver.LoginOptions{})
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRegisterErrors checks the refusals of XEP-0077 §3.1 and §3.2.
func TestRegisterErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := openRegistration(t, b, 10)
		s.AddUser("alice", "pw")
		c := dialTLS(t, s)
		for _, tc := range []struct {
			name, query, cond, typ string
		}{
			{"taken", `<username>alice</username><password>other</password>`, "conflict", "cancel"},
			{"taken, other case", `<username>ALICE</username><password>other</password>`, "conflict", "cancel"},
			{"no password", `<username>bob</username>`, "not-acceptable", "modify"},
			{"empty password", `<username>bob</username><password/>`, "not-acceptable", "modify"},
			{"no username", `<password>pw</password>`, "not-acceptable", "modify"},
			{"invalid username", `<username>bob@evil</username><password>pw</password>`, "not-acceptable", "modify"},
			{"data form only", `<x xmlns='jabber:x:data' type='submit'/>`, "not-acceptable", "modify"},
			{"remove before auth", `<remove/>`, "unexpected-request", "wait"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				testserver.WantIQError(t, rawRequest(t, c, registerIQ("e1", tc.query)), tc.cond, tc.typ)
			})
		}
		if !accountExists(t, s, "alice") || accountExists(t, s, "bob") {
			t.Error("accounts changed by refused requests")
		}
		// The stream is still good for logging in.
		if cond, err := c.AuthPlain("alice", "pw"); err != nil || cond != "" {
			t.Fatalf("login: %q %v", cond, err)
		}
	})
}

// TestRegisterBeforeTLS checks that registration before TLS is refused like
// any stanza before authentication.
func TestRegisterBeforeTLS(t *testing.T) {
	s := openRegistration(t, storetest.Backend{Name: "sqlite"}, 10)
	c, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(testserver.Header); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(registerIQ("reg1", `<username>bob</username><password>pw</password>`)); err != nil {
		t.Fatal(err)
	}
	cond, err := c.WaitStreamError(rawWait)
	if err != nil || cond != "not-authorized" {
		t.Fatalf("stream error %q (%v), want not-authorized", cond, err)
	}
	if accountExists(t, s, "bob") {
		t.Error("account created over plain text")
	}
}

// TestRegisterLimit checks the per-address limit: registration.per_ip
// accounts per window, then policy-violation (wait) until it passes;
// refused attempts do not count.
func TestRegisterLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := openRegistration(t, b, 2)
		s.AddUser("taken", "pw")
		// A refused registration uses none of the allowance.
		testserver.WantIQError(t, rawRequest(t, dialTLS(t, s), registerIQ("r0", `<username>taken</username><password>pw</password>`)), "conflict", "cancel")
		for _, name := range []string{"u1", "u2"} {
			e := rawRequest(t, dialTLS(t, s), registerIQ("r1", `<username>`+name+`</username><password>pw</password>`))
			if e.Get("type") != "result" {
				t.Fatalf("register %s: %s", name, e)
			}
		}
		e := rawRequest(t, dialTLS(t, s), registerIQ("r2", `<username>u3</username><password>pw</password>`))
		testserver.WantIQError(t, e, "policy-violation", "wait")
		if accountExists(t, s, "u3") {
			t.Error("account created over the limit")
		}
	})
}

// TestRegisterRequestLimit checks that one unauthenticated stream cannot
// send registration requests for ever.
func TestRegisterRequestLimit(t *testing.T) {
	s := openRegistration(t, storetest.Backend{Name: "sqlite"}, 10)
	c := dialTLS(t, s)
	get := `<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>`
	var b strings.Builder
	for range 20 {
		b.WriteString(get)
	}
	if err := c.Send(b.String()); err != nil {
		t.Fatal(err)
	}
	cond, err := c.WaitStreamError(rawWait)
	if err != nil || cond != "policy-violation" {
		t.Fatalf("stream error %q (%v), want policy-violation", cond, err)
	}
}

// TestSignupWithoutModule checks a server without the register module: it
// offers no registration, and a registration request before login gets
// service-unavailable on a stream that goes on, as with registration
// disabled (and as before XEP-0077 moved into the module).
func TestSignupWithoutModule(t *testing.T) {
	wantNoSignup(t, testserver.Start(t, func(c *config.Config) {
		c.Modules = slices.DeleteFunc(c.Modules, func(id string) bool { return id == "register" })
	}))
}
