package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/s2s"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
	"github.com/xmppd/xmppd/web"
)

// MetricsPath is where the Prometheus endpoint is served.
const MetricsPath = "/metrics"

// storageOps are the operations storage reports, each with its own
// histogram series, resolved once so that observing one costs no lookup
// in the vector.
var storageOps = []string{
	sqlstore.OpWrite, sqlstore.OpRead, sqlstore.OpArchiveAppend, sqlstore.OpArchiveQuery, sqlstore.OpUserGet,
}

// storageBuckets span an SQLite point read (tens of µs) to a PostgreSQL
// commit on a slow disk (tens of ms) and a stall (seconds).
var storageBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 5}

// observable is what the metrics need of the store: package sql's DB.
type observable interface{ SetObserver(sqlstore.Observer) }

// uploadCounter is what the metrics need of the upload module.
type uploadCounter interface {
	UploadBytes() (stored, served uint64)
}

// addMetrics serves /metrics when web.metrics.enabled says so, to the
// addresses web.metrics.allow lists.
func (s *Server) addMetrics() error {
	mc := s.Config.Web.Metrics
	if !mc.Enabled {
		return nil
	}
	allow, err := parseAllow(mc.Allow)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{c2s: s.C2S, s2s: s.S2S, mods: s.modules},
	)
	if db, ok := s.Store.(observable); ok {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xmppd_storage_operation_seconds",
			Help:    "Time taken by storage operations: write and read transactions, archive appends and pages, account reads at login.",
			Buckets: storageBuckets,
		}, []string{"op"})
		reg.MustRegister(h)
		byOp := make(map[string]prometheus.Observer, len(storageOps))
		for _, op := range storageOps {
			byOp[op] = h.WithLabelValues(op)
		}
		db.SetObserver(func(op string, d time.Duration) {
			if o := byOp[op]; o != nil {
				o.Observe(d.Seconds())
			}
		})
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := web.ClientOf(r).Addr.Addr().Unmap(); !allowed(allow, a) {
			http.Error(w, fmt.Sprintf("forbidden: %s may not read the metrics (web.metrics.allow)", a), http.StatusForbidden)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	_, err = s.Web.Handle(web.Route{Pattern: "GET " + MetricsPath, Handler: h})
	return err
}

// parseAllow reads web.metrics.allow (validated by config), empty being
// config.DefaultMetricsAllow.
func parseAllow(list []string) ([]netip.Prefix, error) {
	if len(list) == 0 {
		list = config.DefaultMetricsAllow
	}
	ps := make([]netip.Prefix, 0, len(list))
	for _, e := range list {
		if p, err := netip.ParsePrefix(e); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("web.metrics.allow: %q is neither an IP address nor a CIDR block", e)
		}
		ps = append(ps, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return ps, nil
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// slogPrinter logs promhttp's errors (a collector failing) through the
// server's logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.log.Error("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// statsCollector turns the c2s, s2s and module counters into metrics at
// each scrape, reading each snapshot once, so that nothing is kept twice
// and the hot paths only bump their atomics.
type statsCollector struct {
	c2s  *c2s.Server
	s2s  *s2s.Server
	mods *modules.Set
}

var (
	descSessions = prometheus.NewDesc("xmppd_c2s_sessions",
		"Bound client sessions served on a connection, by transport.", []string{"transport"}, nil)
	descHibernating = prometheus.NewDesc("xmppd_c2s_hibernating_sessions",
		"Client sessions kept by stream management (XEP-0198) without a connection, waiting to be resumed.", nil, nil)
	descLogins = prometheus.NewDesc("xmppd_c2s_logins_total",
		"SASL authentications by mechanism and result (success, failure: a SASL failure sent).", []string{"mechanism", "result"}, nil)
	descC2SStanzas = prometheus.NewDesc("xmppd_c2s_stanzas_total",
		"Stanzas read from (in) and written to (out) clients, by kind.", []string{"direction", "kind"}, nil)
	descC2SDrops = prometheus.NewDesc("xmppd_c2s_queue_drops_total",
		"Client sessions closed because their outbound queue overflowed (a client that does not read).", nil, nil)
	descStreams = prometheus.NewDesc("xmppd_s2s_streams",
		"Authenticated server-to-server streams by direction (in, out) and authentication (SASL EXTERNAL, dialback); an inbound stream counts once per domain pair.",
		[]string{"direction", "auth"}, nil)
	descS2SStanzas = prometheus.NewDesc("xmppd_s2s_stanzas_total",
		"Stanzas read from (in) and written to (out) other servers, by kind.", []string{"direction", "kind"}, nil)
	descS2SDrops = prometheus.NewDesc("xmppd_s2s_queue_drops_total",
		"Stanzas bounced because the outbound stream's queue to their domain was full.", nil, nil)
	descUpload = prometheus.NewDesc("xmppd_upload_bytes_total",
		"HTTP File Upload (XEP-0363) bytes stored (completed uploads) and served (downloads).", []string{"direction"}, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descHibernating, descLogins, descC2SStanzas, descC2SDrops,
		descStreams, descS2SStanzas, descS2SDrops, descUpload} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	cs := c.c2s.Stats()
	for t, n := range cs.Sessions {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), t)
	}
	ch <- prometheus.MustNewConstMetric(descHibernating, prometheus.GaugeValue, float64(cs.Hibernating))
	for _, l := range cs.Logins {
		ch <- prometheus.MustNewConstMetric(descLogins, prometheus.CounterValue, float64(l.N), l.Mechanism, l.Result)
	}
	kinds(ch, descC2SStanzas, "in", cs.StanzasIn)
	kinds(ch, descC2SStanzas, "out", cs.StanzasOut)
	ch <- prometheus.MustNewConstMetric(descC2SDrops, prometheus.CounterValue, float64(cs.QueueDrops))

	ss := c.s2s.Stats()
	for k, n := range ss.Streams {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(n), k.Direction, k.Auth)
	}
	kinds(ch, descS2SStanzas, "in", ss.StanzasIn)
	kinds(ch, descS2SStanzas, "out", ss.StanzasOut)
	ch <- prometheus.MustNewConstMetric(descS2SDrops, prometheus.CounterValue, float64(ss.QueueDrops))

	for _, m := range c.mods.Modules() {
		if u, ok := m.(uploadCounter); ok {
			stored, served := u.UploadBytes()
			ch <- prometheus.MustNewConstMetric(descUpload, prometheus.CounterValue, float64(stored), "stored")
			ch <- prometheus.MustNewConstMetric(descUpload, prometheus.CounterValue, float64(served), "served")
		}
	}
}

// kinds emits one counter per stanza kind.
func kinds(ch chan<- prometheus.Metric, d *prometheus.Desc, direction string, byKind map[string]uint64) {
	for k, n := range byKind {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), direction, k)
	}
}
