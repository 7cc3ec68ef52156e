#!/usr/bin/python3
"""slixmpp IM scenario against xmppd: subscriptions, presence, offline messages.

Run by scripts/interop/slixmpp_im.sh with Debian's /usr/bin/python3. Every
login is a fresh slixmpp client that connects to 127.0.0.1:PORT, negotiates
STARTTLS with a certificate verified against --ca-file and authenticates with
SASL SCRAM-SHA-256 only (the Client class of slixmpp_chat.py). Steps:

 1. A and B log in, fetch their (empty) rosters, send initial presence.
 2. A subscribes to B; B approves and subscribes back; A approves. Every
    roster push of RFC 6121 §3.1 is awaited, and in the end both clients'
    roster objects, which only the server's roster results and pushes fill
    (automatic authorisation is off), must say subscription 'both'.
 3. B sees A available; A disconnects and B gets A's unavailable presence; A
    logs in again and B sees A available, and A gets B's presence (the
    server's probe).
 4. B disconnects; A sends a chat message to B's bare JID; B logs in again,
    sends presence and gets the message with a XEP-0203 delay and the exact
    body; a third login of B gets no second copy.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_A and XMPP_PASSWORD_B.
"""

import asyncio
import datetime as dt
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402
import slixmpp.exceptions  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import StanzaPath  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import Failure, fail, section, step, xml  # noqa: E402

AVAILABLE = ("available", "chat", "away", "xa", "dnd")


class IMClient(chat.Client):
    """A chat.Client that records presences and roster pushes and leaves all
    subscription decisions to the test (slixmpp's auto-authorise is off)."""

    def __init__(self, name, jid, password, port, ca_file):
        super().__init__(name, jid, password, port, ca_file)
        self.register_plugin("xep_0203")
        # No automatic 'subscribed'/'subscribe' answers: the test sends them.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.presences = []  # every presence received, in order
        self.pushes = []  # every roster push (iq type=set), before slixmpp's own checks
        self._news = asyncio.Event()
        self.add_event_handler("presence", self._on_presence)
        self.register_handler(Callback("interop roster push log",
                                       StanzaPath("iq@type=set/roster"), self._on_push))

    def _notify(self):
        ev, self._news = self._news, asyncio.Event()
        ev.set()

    def _on_presence(self, pres):
        self.presences.append(pres)
        self._notify()

    def _on_push(self, iq):
        self.pushes.append(iq)
        self._notify()

    def _on_message(self, msg):
        super()._on_message(msg)
        self._notify()

    def mark(self):
        """Positions in the presence and push logs, to wait for later ones."""
        return len(self.presences), len(self.pushes)

    async def _wait(self, records, start, pred, timeout):
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(records):
                if pred(records[i]):
                    return records[i]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            news = self._news
            try:
                await asyncio.wait_for(news.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def expect_presence(self, mark, ptype, from_jid, timeout, desc=None):
        """Wait for a presence of ptype ('available' means any show) from
        from_jid (full: exactly; bare: that bare JID, with no resource)."""
        from_jid = slixmpp.JID(from_jid)
        want = AVAILABLE if ptype == "available" else (ptype,)

        def match(p):
            return p["type"] in want and p["from"].bare == from_jid.bare and (
                not from_jid.resource or p["from"].resource == from_jid.resource)

        p = await self._wait(self.presences, mark[0], match, timeout)
        if p is None:
            seen = [xml(p) for p in self.presences[mark[0]:]] or ["nothing"]
            fail(f"{self.name}: no {ptype} presence from {from_jid} within {timeout}s"
                 + (f" ({desc})" if desc else "") + "; received since: " + " | ".join(seen))
        if not from_jid.resource and p["from"].resource:
            fail(f"{self.name}: {ptype} presence stamped with the full JID {p['from']}, "
                 f"want the bare JID {from_jid.bare} (RFC 6121 §3.1.2/§3.1.5): {xml(p)}")
        return p

    async def expect_push(self, mark, contact, subscription, ask, timeout, rfc):
        """Wait for a roster push with an item for contact in the given state."""
        contact = slixmpp.JID(contact).bare

        def match(iq):
            for j, item in iq["roster"]["items"].items():
                if (str(j) == contact and item["subscription"] == subscription
                        and (item["ask"] or "") == ask):
                    return True
            return False

        iq = await self._wait(self.pushes, mark[1], match, timeout)
        want = f"<item jid='{contact}' subscription='{subscription}'" + (
            f" ask='{ask}'" if ask else "") + "/>"
        if iq is None:
            seen = [xml(iq) for iq in self.pushes[mark[1]:]] or ["no push at all"]
            fail(f"{self.name}: no roster push {want} within {timeout}s ({rfc}); "
                 "pushes received since: " + " | ".join(seen))
        if str(iq["from"]) not in ("", self.boundjid.bare):
            fail(f"{self.name}: roster push from {iq['from']}, must be absent or the bare JID "
                 f"{self.boundjid.bare} (RFC 6121 §2.1.6; slixmpp refuses it): {xml(iq)}")
        return iq

    def roster_state(self, contact):
        item = self.client_roster[slixmpp.JID(contact).bare]
        return item["subscription"], item["pending_out"]


async def login(name, jid, password, args, clients, roster_expect=None):
    """A fresh client (added to clients): session, roster fetched and
    checked, no presence sent yet."""
    c = IMClient(name, jid, password, args.port, args.ca_file)
    clients.append(c)
    c.connect(address=("127.0.0.1", args.port), force_starttls=True,
              disable_starttls=False, use_ssl=False)
    try:
        await asyncio.wait_for(asyncio.shield(c.started), args.step_timeout)
    except asyncio.TimeoutError:
        fail(f"{name}: no session within {args.step_timeout}s "
             f"(TLS done: {c.tls_done}, features: {sorted(c.features)})")
    except Failure as e:
        fail(str(e))
    used, version, cipher = c.check_security()
    try:
        res = await c.get_roster(timeout=args.step_timeout)
    except slixmpp.exceptions.IqError as e:
        fail(f"{name}: roster get (RFC 6121 §2.1.3) answered with an error: {xml(e.iq)}")
    except slixmpp.exceptions.IqTimeout:
        fail(f"{name}: no answer to the roster get within {args.step_timeout}s")
    items = {str(j): (it["subscription"], it["ask"] or "")
             for j, it in res["roster"]["items"].items()}
    if roster_expect is not None and items != roster_expect:
        fail(f"{name}: roster {items}, want {roster_expect}: {xml(res)}")
    step(f"{name}: logged in as {c.boundjid.full} ({version} {cipher}, certificate verified, "
         f"SASL {used}); roster: {items or 'empty'}")
    return c


async def presence(c, args, what="initial presence"):
    """Send available presence; the answered ping after it proves the server
    has read it."""
    c.send_presence()
    await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=args.step_timeout)
    step(f"{c.name}: sent {what}")


async def logout(c, clients, what="disconnected"):
    clients.remove(c)
    try:
        await asyncio.wait_for(c.disconnect(wait=2.0), 5)
    except Exception:
        c.abort()
    step(f"{c.name}: {what}")


async def run(args, clients):
    pw_a = os.environ["XMPP_PASSWORD_A"]
    pw_b = os.environ["XMPP_PASSWORD_B"]
    ja, jb = slixmpp.JID(args.jid_a), slixmpp.JID(args.jid_b)
    T = args.step_timeout

    # --- 1 ----------------------------------------------------------------------
    section("1", "A and B log in (STARTTLS, verified certificate, SCRAM-SHA-256), "
            "fetch rosters, send presence")
    a = await login("A", ja, pw_a, args, clients, roster_expect={})
    b = await login("B", jb, pw_b, args, clients, roster_expect={})
    await presence(a, args)
    await presence(b, args)

    # --- 2 ----------------------------------------------------------------------
    section("2", "A subscribes to B, B approves and subscribes back, A approves")
    ma, mb = a.mark(), b.mark()
    a.send_presence_subscription(pto=jb.bare, ptype="subscribe")
    step(f"A: sent <presence type='subscribe' to='{jb.bare}'/>")
    await a.expect_push(ma, jb, "none", "subscribe", T, "RFC 6121 §3.1.2")
    step(f"A: roster push: {jb.bare} subscription=none ask=subscribe")
    await b.expect_presence(mb, "subscribe", ja.bare, T, "RFC 6121 §3.1.3")
    step(f"B: received subscription request from {ja.bare}")

    ma, mb = a.mark(), b.mark()
    b.send_presence(pto=ja.bare, ptype="subscribed")
    step(f"B: sent <presence type='subscribed' to='{ja.bare}'/>")
    await b.expect_push(mb, ja, "from", "", T, "RFC 6121 §3.1.5")
    step(f"B: roster push: {ja.bare} subscription=from")
    await a.expect_push(ma, jb, "to", "", T, "RFC 6121 §3.1.6")
    step(f"A: roster push: {jb.bare} subscription=to")
    await a.expect_presence(ma, "subscribed", jb.bare, T, "RFC 6121 §3.1.6")
    step(f"A: received 'subscribed' from {jb.bare}")
    await a.expect_presence(ma, "available", jb, T,
                            "B's current presence, RFC 6121 §3.1.5")
    step(f"A: received available presence from {jb} (B's current presence)")

    ma, mb = a.mark(), b.mark()
    b.send_presence_subscription(pto=ja.bare, ptype="subscribe")
    step(f"B: sent <presence type='subscribe' to='{ja.bare}'/>")
    await b.expect_push(mb, ja, "from", "subscribe", T, "RFC 6121 §3.1.2")
    step(f"B: roster push: {ja.bare} subscription=from ask=subscribe")
    await a.expect_presence(ma, "subscribe", jb.bare, T, "RFC 6121 §3.1.3")
    step(f"A: received subscription request from {jb.bare}")

    ma, mb = a.mark(), b.mark()
    mark_b_sub = mb
    a.send_presence(pto=jb.bare, ptype="subscribed")
    step(f"A: sent <presence type='subscribed' to='{jb.bare}'/>")
    await a.expect_push(ma, jb, "both", "", T, "RFC 6121 §3.1.5")
    step(f"A: roster push: {jb.bare} subscription=both")
    await b.expect_push(mb, ja, "both", "", T, "RFC 6121 §3.1.6")
    step(f"B: roster push: {ja.bare} subscription=both")
    await b.expect_presence(mb, "subscribed", ja.bare, T, "RFC 6121 §3.1.6")
    step(f"B: received 'subscribed' from {ja.bare}")
    for c, other in ((a, jb), (b, ja)):
        sub, pending = c.roster_state(other)
        if sub != "both" or pending:
            fail(f"{c.name}: client roster says {other.bare} subscription={sub!r} "
                 f"pending_out={pending}, want 'both' and no pending request")
        step(f"{c.name}: client roster: {other.bare} subscription=both (from the server's pushes)")

    # --- 3 ----------------------------------------------------------------------
    section("3", "presence comes and goes")
    await b.expect_presence(mark_b_sub, "available", ja, T,
                            "A's current presence once B is subscribed, RFC 6121 §3.1.5")
    step(f"B: sees A available (presence from {ja})")
    mb = b.mark()
    await logout(a, clients, "disconnected (stream closed, no unavailable presence sent)")
    await b.expect_presence(mb, "unavailable", ja, T,
                            "the server broadcasts it when A's session ends, RFC 6121 §4.5.2")
    step(f"B: received unavailable presence from {ja}")

    mb = b.mark()
    a = await login("A", ja, pw_a, args, clients, roster_expect={jb.bare: ("both", "")})
    ma = a.mark()
    await presence(a, args, "initial presence again")
    await b.expect_presence(mb, "available", ja, T, "RFC 6121 §4.2.2")
    step(f"B: sees A available again (presence from {ja})")
    await a.expect_presence(ma, "available", jb, T,
                            "the server's probe of B at A's initial presence, RFC 6121 §4.2.2/§4.3")
    step(f"A: sees B available (presence from {jb}, answer to the server's probe)")

    # --- 4 ----------------------------------------------------------------------
    section("4", "offline message (XEP-0160) with a XEP-0203 delay")
    if args.offline_missing:
        fail("offline module missing: `xmppd config check` does not know the module ID "
             "'offline' (XEP-0160), so this step cannot run")
    ma = a.mark()
    await logout(b, clients)
    await a.expect_presence(ma, "unavailable", jb, T, "RFC 6121 §4.5.2")
    step(f"A: received unavailable presence from {jb}: B is offline")

    body = f"offline hello to B from A, ünïcödé & <xml> {os.getpid()}"
    before = dt.datetime.now(dt.timezone.utc)
    a.send_message(mto=slixmpp.JID(jb.bare), mbody=body, mtype="chat")
    await a["xep_0199"].ping(jid=slixmpp.JID(a.boundjid.domain), timeout=T)
    step(f"A: sent chat to bare {jb.bare} while B is offline: {body!r}")

    b = await login("B", jb, pw_b, args, clients, roster_expect={ja.bare: ("both", "")})
    if not b.inbox.empty():
        m = b.inbox.get_nowait()
        fail(f"B: got a message before sending initial presence (XEP-0160 §2: only on "
             f"available presence): {xml(m)}")
    await presence(b, args, "initial presence (second login)")
    msg = await chat.expect_message(b, body, ja.bare, T)
    after = dt.datetime.now(dt.timezone.utc)
    if msg.xml.find("{urn:xmpp:delay}delay") is None or msg["delay"]["stamp"] is None:
        fail(f"B: offline message without a XEP-0203 <delay xmlns='urn:xmpp:delay' stamp=.../>: "
             f"{xml(msg)}")
    stamp = msg["delay"]["stamp"]
    slack = dt.timedelta(seconds=2)  # the stamp may be truncated to the second
    if not (before - slack <= stamp <= after + slack):
        fail(f"B: delay stamp {stamp.isoformat()} is not between sending "
             f"({before.isoformat()}) and receipt ({after.isoformat()}): {xml(msg)}")
    step(f"B: received from {msg['from']}: {msg['body']!r} (exact match), delay "
         f"stamp={stamp.isoformat()} from={msg['delay']['from']}")
    if not a.inbox.empty():
        m = a.inbox.get_nowait()
        fail(f"A: unexpected message (an error for the offline message?): {xml(m)}")

    await logout(b, clients)
    b = await login("B", jb, pw_b, args, clients, roster_expect={ja.bare: ("both", "")})
    await presence(b, args, "initial presence (third login)")
    await asyncio.sleep(args.quiet)
    if not b.inbox.empty():
        m = b.inbox.get_nowait()
        fail(f"B: third login got a message again (the offline queue was not emptied): {xml(m)}")
    step(f"B: third login: no second copy ({args.quiet:.1f} s after presence)")


def main():
    p = chat.scenario_args(__doc__.splitlines()[0], timeout=80)
    p.add_argument("--quiet", type=float, default=2,
                   help="seconds the third login of B waits for a (wrong) second copy")
    p.add_argument("--offline-missing", action="store_true",
                   help="the server has no 'offline' module: run steps 1-3, fail step 4")
    return chat.run_scenario(run, p.parse_args(), steps=4)


if __name__ == "__main__":
    sys.exit(main())
