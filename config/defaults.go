package config

import (
	"path/filepath"
	"slices"
	"time"
)

// The defaults. Limits follow what ejabberd and Prosody ship with, so an
// operator coming from either finds the same behaviour.
const (
	defaultDataDir         = "./xmppd-data"
	defaultDomain          = "localhost"
	defaultSQLiteFile      = "xmppd.db" // inside DataDir
	defaultC2SAddress      = ":5222"
	defaultC2STLSAddress   = ":5223"
	defaultScramIterations = 4096                // the minimum RFC 7677 recommends
	defaultFastTokenTTL    = 21 * 24 * time.Hour // as Prosody's and ejabberd's
	defaultAllowPlain      = true
	defaultMaxStanzaSize   = 256 << 10
	defaultMaxDepth        = 64
	defaultMaxSessions     = 10
	defaultOutboundQueue   = 1024
	defaultLoginFailures   = 5
	defaultLoginFailuresIP = 50
	defaultLoginWindow     = time.Minute
	defaultPingInterval    = 5 * time.Minute
	defaultPingTimeout     = time.Minute
	defaultMaxPendingPerIP = 32
	// Stream management (XEP-0198): Prosody's smacks defaults are of the
	// same order (5 min, a queue of 500).
	defaultResumeTimeout     = 5 * time.Minute
	defaultSMAckAfter        = 5
	defaultSMAckInterval     = 30 * time.Second
	defaultSMMaxUnacked      = 500
	defaultSMMaxUnackedBytes = 2 << 20
	defaultMaxHibernatingPU  = 5
	defaultMaxHibernating    = 10000
	defaultCSIMaxHeld        = 256
	defaultS2SConnect        = 30 * time.Second
	defaultS2SIdle           = 10 * time.Minute
	// Archives (XEP-0313): kept forever unless expire_after says otherwise.
	defaultArchiveMode       = ArchiveAlways
	defaultExpireBatch       = 1000
	defaultExpireEvery       = time.Hour
	defaultHTTPAddress       = "127.0.0.1:5280"
	defaultHTTPSAddress      = "127.0.0.1:5281"
	defaultTURNAddress       = "127.0.0.1:3478" // module turn: STUN/TURN over UDP and TCP
	defaultMaxBodySize       = 1 << 20
	defaultMaxHeaderBytes    = 16 << 10
	defaultReadHeaderTimeout = 10 * time.Second
	defaultHTTPReadTimeout   = time.Minute
	defaultHTTPWriteTimeout  = time.Minute
	defaultHTTPIdleTimeout   = 2 * time.Minute
	defaultLogLevel          = "info"
	defaultLogFormat         = "text"
)

// defaultModules is a function, not a variable, so that no two configs
// ever share (and mutate) one slice.
func defaultModules() []string {
	return []string{"disco", "ping", "version", "time", "roster", "offline", "blocking", "carbons", "vcard", "private", "last", "register", "push", "mam", "pep", "pubsub", "muc", "upload", "turn"}
}

// Default is the development configuration that `xmppd serve` runs with when
// it is given no file: it serves "localhost" with a self-signed certificate
// and keeps everything in SQLite under ./xmppd-data, so that trying the
// server takes no setup at all.
func Default() *Config {
	c := &Config{
		Hosts: []Host{{Domain: defaultDomain}},
		Auth:  Auth{AllowPlain: defaultAllowPlain},
		S2S:   S2S{Enabled: true},
	}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset (zero) setting with its default, so that
// the rest of the server never has to guess what an absent value means.
//
// Two things are deliberately not defaulted. Hosts: a file that names no
// domain is a mistake, and silently serving "localhost" would hide it.
// Auth.AllowPlain: false is a real choice that cannot be told apart from
// unset, so Default and Load set it before anything else.
//
// A nil list (Listeners, Modules) is unset; an empty, non-nil one was
// written as [] on purpose and is kept.
func (c *Config) ApplyDefaults() {
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if c.Listeners == nil {
		c.Listeners = []Listener{
			{Type: ListenerC2SStartTLS, Address: defaultC2SAddress},
			{Type: ListenerC2SDirectTLS, Address: defaultC2STLSAddress},
			{Type: ListenerHTTP, Address: defaultHTTPAddress},
			{Type: ListenerHTTPS, Address: defaultHTTPSAddress},
			{Type: ListenerTURN, Address: defaultTURNAddress},
		}
	}
	if c.Storage.SQLite == "" && c.Storage.Postgres == "" {
		c.Storage.SQLite = filepath.Join(c.DataDir, defaultSQLiteFile)
	}
	if c.Modules == nil {
		c.Modules = defaultModules()
	}
	setDefault(&c.Auth.ScramIterations, defaultScramIterations)
	setDefault(&c.Auth.FastTokenTTL, defaultFastTokenTTL)
	c.Limits.applyDefaults()
	// Empty and absent mean the same for these, so keep one form.
	if len(c.S2S.Routes) == 0 {
		c.S2S.Routes = nil
	}
	if len(c.S2S.DomainAuth) == 0 {
		c.S2S.DomainAuth = nil
	}
	if len(c.S2S.PlaintextDomains) == 0 {
		c.S2S.PlaintextDomains = nil
	}
	setDefault(&c.S2S.Auth, S2SAuthAllowDialback)
	setDefault(&c.S2S.ConnectTimeout, defaultS2SConnect)
	setDefault(&c.S2S.IdleTimeout, defaultS2SIdle)
	c.Archive.applyDefaults()
	c.Web.applyDefaults()
	setDefault(&c.Log.Level, defaultLogLevel)
	setDefault(&c.Log.Format, defaultLogFormat)
}

func (l *Limits) applyDefaults() {
	setDefault(&l.MaxStanzaSize, defaultMaxStanzaSize)
	setDefault(&l.MaxDepth, defaultMaxDepth)
	setDefault(&l.MaxSessionsPerUser, defaultMaxSessions)
	setDefault(&l.OutboundQueue, defaultOutboundQueue)
	setDefault(&l.LoginFailures, defaultLoginFailures)
	setDefault(&l.LoginFailuresPerIP, defaultLoginFailuresIP)
	setDefault(&l.LoginWindow, defaultLoginWindow)
	setDefault(&l.PingInterval, defaultPingInterval)
	setDefault(&l.PingTimeout, defaultPingTimeout)
	setDefault(&l.MaxPendingPerIP, defaultMaxPendingPerIP)
	setDefault(&l.ResumeTimeout, defaultResumeTimeout)
	setDefault(&l.SMAckAfter, defaultSMAckAfter)
	setDefault(&l.SMAckInterval, defaultSMAckInterval)
	setDefault(&l.SMMaxUnacked, defaultSMMaxUnacked)
	setDefault(&l.SMMaxUnackedBytes, defaultSMMaxUnackedBytes)
	setDefault(&l.MaxHibernatingPerUser, defaultMaxHibernatingPU)
	setDefault(&l.MaxHibernating, defaultMaxHibernating)
	setDefault(&l.CSIMaxHeld, defaultCSIMaxHeld)
}

func (w *Web) applyDefaults() {
	setDefault(&w.MaxBodySize, defaultMaxBodySize)
	setDefault(&w.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDefault(&w.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDefault(&w.ReadTimeout, defaultHTTPReadTimeout)
	setDefault(&w.WriteTimeout, defaultHTTPWriteTimeout)
	setDefault(&w.IdleTimeout, defaultHTTPIdleTimeout)
	if len(w.TrustedProxies) == 0 {
		w.TrustedProxies = nil
	}
	if len(w.WebSocket.Origins) == 0 {
		w.WebSocket.Origins = nil
	}
	if len(w.Metrics.Allow) == 0 {
		w.Metrics.Allow = nil
	}
	if len(w.BOSH.Origins) == 0 {
		w.BOSH.Origins = nil
	}
	setDefault(&w.BOSH.Path, "/http-bind")
	setDefault(&w.BOSH.MaxWait, 60*time.Second)
	setDefault(&w.BOSH.MaxHold, 1)
	setDefault(&w.BOSH.Inactivity, 60*time.Second)
}

// DefaultMetricsAllow are the addresses that may read /metrics when
// web.metrics.allow is empty: loopback, where a local Prometheus or
// an SSH tunnel reaches it.
var DefaultMetricsAllow = []string{"127.0.0.0/8", "::1/128"}

func (a *Archive) applyDefaults() {
	setDefault(&a.Default, defaultArchiveMode)
	if a.Allowed == nil {
		a.Allowed = slices.Clone(ArchiveModes)
	}
	setDefault(&a.ExpireBatch, defaultExpireBatch)
	setDefault(&a.ExpireEvery, defaultExpireEvery)
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Host returns the configuration of the served domain, and whether the
// domain is served at all; the router asks it for every stanza's "to", so
// domain must already be in normal form (as a parsed JID's domainpart is).
func (c *Config) Host(domain string) (Host, bool) {
	for _, h := range c.Hosts {
		if h.Domain == domain {
			return h, true
		}
	}
	return Host{}, false
}
