#!/usr/bin/python3
"""slixmpp Message Carbons (XEP-0280) scenario against xmppd.

Run by scripts/interop/slixmpp_carbons.sh with Debian's /usr/bin/python3.
Every client is a chat.Client of slixmpp_chat.py (STARTTLS with the
certificate verified against --ca-file, slixmpp's default SASL) with
slixmpp's xep_0280 plugin, which accepts a carbon only from the client's
own bare JID (§11). Steps:

 1. A1 (alice/slix-a) and A2 (alice/slix-a2), two resources of one account,
    and B (bob) log in and send presence; the server's disco#info lists
    urn:xmpp:carbons:2; A1 and A2 enable carbons.
 2. B sends a chat message to A1's full JID: A1 gets it, A2 gets it as a
    <received/> carbon (the forwarded message from B to A1, exact body),
    and A1 gets no carbon of it.
 3. A1 sends a chat message to B: B gets it, A2 gets it as a <sent/> carbon
    (the forwarded message from A1 to B, exact body), and A1 gets no carbon.
 4. A2 disables carbons; B writes to A1 again and A2 gets no carbon of it.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_A and XMPP_PASSWORD_B.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402
import slixmpp.exceptions  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import fail, section, step, xml  # noqa: E402

NS = "urn:xmpp:carbons:2"


class CarbonsClient(chat.Client):
    """A chat.Client with the xep_0280 plugin that keeps the carbons it
    accepts apart from plain messages."""

    def __init__(self, name, jid, password, port, ca_file):
        super().__init__(name, jid, password, port, ca_file)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0280")
        self.carbons = asyncio.Queue()  # (direction, wrapper message)
        self.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(("received", m)))
        self.add_event_handler("carbon_sent", lambda m: self.carbons.put_nowait(("sent", m)))

    def _on_message(self, msg):
        # slixmpp hands a carbon to the plain message handlers too; here
        # only the xep_0280 events count for it, so that a carbon (or a
        # forgery the plugin rejects) is never taken for the original.
        if msg.xml.find(f"{{{NS}}}received") is not None or msg.xml.find(f"{{{NS}}}sent") is not None:
            return
        super()._on_message(msg)


async def login(name, jid, password, args, clients):
    c = CarbonsClient(name, jid, password, args.port, args.ca_file)
    clients.append(c)
    await chat.start_sessions([c], args.step_timeout, args.ca_file)
    c.send_presence()
    await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=args.step_timeout)
    step(f"{name}: presence sent")
    return c


async def sync(c, args):
    """A server ping answered: everything the server queued for c before it
    has arrived."""
    await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=args.step_timeout)


async def expect_carbon(c, direction, mfrom, mto, body, timeout):
    """Wait for the carbon of direction holding the message mfrom → mto with
    body, and check its wrapper."""
    try:
        got, wrapper = await asyncio.wait_for(c.carbons.get(), timeout)
    except asyncio.TimeoutError:
        fail(f"{c.name}: no <{direction} xmlns='{NS}'/> carbon of {mfrom} → {mto} {body!r} "
             f"within {timeout}s")
    inner = wrapper[f"carbon_{direction}"] if got == direction else None
    if inner is None:
        fail(f"{c.name}: got a {got} carbon, want a {direction} one: {xml(wrapper)}")
    if wrapper["from"] != slixmpp.JID(c.boundjid.bare):
        fail(f"{c.name}: carbon from {wrapper['from']}, must be the bare JID {c.boundjid.bare} "
             f"(XEP-0280 §5/§6): {xml(wrapper)}")
    if wrapper["to"] != c.boundjid:
        fail(f"{c.name}: carbon to {wrapper['to']}, want {c.boundjid}: {xml(wrapper)}")
    if (inner["from"] != slixmpp.JID(mfrom) or inner["to"] != slixmpp.JID(mto)
            or inner["body"] != body or wrapper["type"] != "chat"):
        fail(f"{c.name}: carbon of the wrong message (want {mfrom} → {mto} {body!r}, type chat): "
             f"{xml(wrapper)}")
    step(f"{c.name}: got the {direction} carbon from {wrapper['from']}: "
         f"{inner['from']} → {inner['to']} {inner['body']!r}")


async def expect_no_carbon(c, args, what):
    await sync(c, args)
    await asyncio.sleep(args.quiet)
    if not c.carbons.empty():
        got, wrapper = c.carbons.get_nowait()
        fail(f"{c.name}: got a {got} carbon {what}: {xml(wrapper)}")
    step(f"{c.name}: no carbon {what} ({args.quiet:g} s after a server round trip)")


async def run(args, clients):
    pw_a, pw_b = os.environ["XMPP_PASSWORD_A"], os.environ["XMPP_PASSWORD_B"]
    ja = slixmpp.JID(args.jid_a)
    ja2 = slixmpp.JID(f"{ja.bare}/{ja.resource}2")
    jb = slixmpp.JID(args.jid_b)
    T = args.step_timeout

    section("1", "two resources of alice and bob log in; alice's enable carbons")
    a1 = await login("A1", ja, pw_a, args, clients)
    a2 = await login("A2", ja2, pw_a, args, clients)
    b = await login("B", jb, pw_b, args, clients)
    info = await a1["xep_0030"].get_info(jid=slixmpp.JID(ja.domain), timeout=T)
    features = info["disco_info"]["features"]
    if NS not in features:
        fail(f"server disco#info lacks {NS}" +
             (" (carbons module missing)" if args.carbons_missing else "") + f": {features}")
    step(f"A1: server disco#info lists {NS}")
    for c in (a1, a2):
        try:
            await c["xep_0280"].enable(timeout=T)
        except slixmpp.exceptions.IqError as e:
            fail(f"{c.name}: <enable xmlns='{NS}'/> answered with an error: {xml(e.iq)}")
        step(f"{c.name}: carbons enabled")

    section("2", "B writes to A1's full JID: A2 gets a received carbon")
    body = f"to A1 from B, ünïcödé & <xml> {os.getpid()}"
    b.send_message(mto=a1.boundjid, mbody=body, mtype="chat")
    step(f"B: sent chat to {a1.boundjid}: {body!r}")
    msg = await chat.expect_message(a1, body, jb.bare, T)
    step(f"A1: received the original from {msg['from']}")
    await expect_carbon(a2, "received", b.boundjid, a1.boundjid, body, T)
    await expect_no_carbon(a1, args, "of a message addressed to it")

    section("3", "A1 writes to B: A2 gets a sent carbon")
    body = f"to B from A1 — {os.getpid()}"
    a1.send_message(mto=b.boundjid, mbody=body, mtype="chat")
    step(f"A1: sent chat to {b.boundjid}: {body!r}")
    await chat.expect_message(b, body, ja.bare, T)
    step("B: received it")
    await expect_carbon(a2, "sent", a1.boundjid, b.boundjid, body, T)
    await expect_no_carbon(a1, args, "of its own message")

    section("4", "A2 disables carbons: no more copies")
    try:
        await a2["xep_0280"].disable(timeout=T)
    except slixmpp.exceptions.IqError as e:
        fail(f"A2: <disable xmlns='{NS}'/> answered with an error: {xml(e.iq)}")
    step("A2: carbons disabled")
    body = f"to A1 again {os.getpid()}"
    b.send_message(mto=a1.boundjid, mbody=body, mtype="chat")
    await chat.expect_message(a1, body, jb.bare, T)
    step("A1: received B's second message")
    await sync(b, args)
    await expect_no_carbon(a2, args, "after disabling")
    if not a2.inbox.empty():
        fail(f"A2: got a message addressed to A1: {xml(a2.inbox.get_nowait())}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="c2s (STARTTLS) port on 127.0.0.1")
    p.add_argument("--jid-a", required=True, help="full JID; the second resource adds a 2")
    p.add_argument("--jid-b", required=True, help="full JID")
    p.add_argument("--ca-file", required=True, help="PEM certificate(s) to trust")
    p.add_argument("--step-timeout", type=float, default=10)
    p.add_argument("--quiet", type=float, default=1,
                   help="seconds to wait for a carbon that must not come")
    p.add_argument("--timeout", type=float, default=60, help="for the whole run")
    p.add_argument("--carbons-missing", action="store_true",
                   help="the server has no 'carbons' module: the run is expected to fail")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    return chat.run_scenario(run, p.parse_args(), steps=4)


if __name__ == "__main__":
    sys.exit(main())
