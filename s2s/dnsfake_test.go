package s2s_test

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// zoneServer is an authoritative DNS server over UDP on loopback, for
// s2s.dns_server: it answers from records, by lower-case fully qualified
// name, NXDOMAIN for names it does not know and an empty answer for known
// names without records of the type asked. (The resolver's own tests, in
// package s2s, have a fuller one that these tests cannot import.)
type zoneServer struct {
	addr    string
	records map[string][]dnsmessage.Resource
}

func srvRecord(name string, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: 60},
		Body:   &dnsmessage.SRVResource{Port: port, Target: dnsmessage.MustNewName(target)},
	}
}

func aRecord(name, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
		Body:   &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()},
	}
}

func startZone(t *testing.T, rrs ...dnsmessage.Resource) *zoneServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zoneServer{addr: pc.LocalAddr().String(), records: map[string][]dnsmessage.Resource{}}
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header.Name.String())
		z.records[name] = append(z.records[name], rr)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer := z.answer(buf[:n]); answer != nil {
				pc.WriteTo(answer, from)
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return z
}

func (z *zoneServer) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rrs, known := z.records[strings.ToLower(q.Name.String())]
	msg := dnsmessage.Message{
		Header: dnsmessage.Header{
			ID: h.ID, Response: true, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
		},
		Questions: []dnsmessage.Question{q},
	}
	if !known {
		msg.Header.RCode = dnsmessage.RCodeNameError
	}
	for _, rr := range rrs {
		if rr.Header.Type == q.Type {
			msg.Answers = append(msg.Answers, rr)
		}
	}
	packed, err := msg.Pack()
	if err != nil {
		return nil
	}
	return packed
}

// closedUDP returns a loopback UDP address nothing listens on: a DNS
// server there fails every lookup at once.
func closedUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}
