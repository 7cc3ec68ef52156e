package s2s

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
)

// Report is what `xmppd s2s check` found out about a remote domain.
type Report struct {
	Remote  string
	Target  Target
	TLS     bool
	Version string
	// CertError is why the certificate does not validate for the domain,
	// or nil.
	CertError error
	External  bool // the peer offers SASL EXTERNAL
	Dialback  bool // the peer offers Server Dialback
	// Auth is the method this server would use, or "" if none.
	Auth string
	// Why explains an empty Auth.
	Why string
}

// Check connects to remote as local, negotiates TLS and reports what
// authentication would be used, without authenticating.
func (s *Server) Check(ctx context.Context, local, remote string) (Report, error) {
	r := Report{Remote: remote}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	c, n, err := s.open(ctx, local, remote)
	if err != nil {
		return r, err
	}
	defer c.close(nil)
	r.Target, r.TLS, r.CertError, r.External, r.Dialback = n.target, n.tls, n.verdict, n.external, n.dialback
	if n.tls {
		r.Version = tls.VersionName(n.version)
	}
	switch {
	case n.tls && n.verdict != nil && !s.dialbackAllowed(remote):
		r.Why = "the certificate does not validate and the policy requires a valid one"
	case n.tls && n.external:
		r.Auth = authExternal
		if n.dialback && s.dialbackAllowed(remote) {
			r.Auth += " (dialback if the peer refuses our certificate)"
		}
	case n.dialback && s.dialbackAllowed(remote):
		r.Auth = authDialback
	case n.dialback:
		r.Why = "the peer offers only dialback, which the policy does not allow"
	default:
		r.Why = "the peer offers neither SASL EXTERNAL nor dialback"
	}
	return r, nil
}

// Print writes the report for people.
func (r Report) Print(w io.Writer) {
	mode := "STARTTLS"
	if r.Target.DirectTLS {
		mode = "direct TLS"
	}
	fmt.Fprintf(w, "remote:       %s\n", r.Remote)
	fmt.Fprintf(w, "connected to: %s (%s)\n", r.Target, mode)
	if r.TLS {
		fmt.Fprintf(w, "tls:          %s\n", r.Version)
	} else {
		fmt.Fprintf(w, "tls:          none (plaintext allowed for this domain)\n")
	}
	if r.CertError == nil && r.TLS {
		fmt.Fprintf(w, "certificate:  valid for %s\n", r.Remote)
	} else if r.TLS {
		fmt.Fprintf(w, "certificate:  NOT valid for %s: %v\n", r.Remote, r.CertError)
	}
	fmt.Fprintf(w, "offers:       SASL EXTERNAL %s, dialback %s\n", yesNo(r.External), yesNo(r.Dialback))
	if r.Auth != "" {
		fmt.Fprintf(w, "would use:    %s\n", r.Auth)
	} else {
		fmt.Fprintf(w, "would use:    nothing: %s\n", r.Why)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
