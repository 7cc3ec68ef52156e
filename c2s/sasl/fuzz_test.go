package sasl

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// FuzzServerStep feeds arbitrary client-first and client-final messages to
// a server. Whatever arrives, the server must not panic, must fail with one
// of the client-side sentinels (the store never fails here, so never
// ErrTemporary), and may only report done after a proof that holds.
func FuzzServerStep(f *testing.F) {
	const serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	cred, err := credential.Derive(SHA256, "pencil", rfc7677Salt, 4096)
	if err != nil {
		f.Fatal(err)
	}
	lookup := func(authcid string) (storage.Credential, error) {
		if authcid == "user" {
			return cred, nil
		}
		return storage.Credential{}, storage.ErrNotFound
	}

	f.Add(false, false, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
		[]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	f.Add(false, true, []byte("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
		[]byte("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	f.Add(true, true, []byte("p=tls-exporter,a=ju=2Cliet,n=someone,r=abc,x=ext"),
		[]byte("c=cD10bHMtZXhwb3J0ZXIsLA==,r=abc%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=y,p=AAAA"))
	f.Add(false, false, []byte("n,,m=x,n=us=3Der,r=\x00"), []byte(",p="))

	f.Fuzz(func(t *testing.T, plus, plusOffered bool, first, final []byte) {
		mech := SHA256
		if plus {
			mech = SHA256Plus
		}
		s, err := NewServer(mech, lookup, fakeBinding)
		if err != nil {
			t.Fatal(err)
		}
		s.PlusOffered = plusOffered
		s.newNonce = func() string { return serverNonce }

		out, done, err := s.Step(first)
		checkStep(t, out, done, err)
		if err != nil {
			return
		}
		if done || !bytes.HasPrefix(out, []byte("r=")) {
			t.Fatalf("server-first %q, done=%v", out, done)
		}
		out, done, err = s.Step(final)
		checkStep(t, out, done, err)
		if err == nil && (!done || !bytes.HasPrefix(out, []byte("v=")) || s.Username() != "user") {
			t.Fatalf("server-final %q, done=%v, user %q", out, done, s.Username())
		}
		if _, _, err := s.Step(final); err == nil {
			t.Fatal("a third step succeeded")
		}
	})
}

func checkStep(t *testing.T, out []byte, done bool, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if out != nil || done {
		t.Fatalf("error %v came with output %q, done=%v", err, out, done)
	}
	if errors.Is(err, ErrTemporary) || Condition(err) == "temporary-auth-failure" {
		t.Fatalf("error %v blames the server", err)
	}
}
