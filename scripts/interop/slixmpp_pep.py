#!/usr/bin/python3
"""slixmpp PEP: an avatar (XEP-0084) and bookmarks (XEP-0048) with notifications against xmppd.

Run by scripts/interop/slixmpp_pep.sh with Debian's /usr/bin/python3. The
clients are the Client class of slixmpp_chat.py (STARTTLS, certificate
verified against --ca-file, slixmpp's default SASL settings) with slixmpp's
xep_0060, xep_0163 (so xep_0115 caps with +notify), xep_0084, xep_0048,
xep_0223 and xep_0054 plugins: A and A2 are two resources of alice, B is bob.
slixmpp 1.8.3 has no XEP-0402 plugin: A stores XEP-0048 bookmarks and A2,
which asks for urn:xmpp:bookmarks:1+notify, sees them as Bookmarks 2
(XEP-0402 #compat and #compat-pep). Steps:

 1. A, A2 and B log in and send presence.
 2. A asks B for a presence subscription; both accept and subscribe back
    (slixmpp's auto_authorize and auto_subscribe): each gets the other's
    available presence.
 3. A publishes an avatar, data then metadata (xep_0084): B, whose caps
    advertise urn:xmpp:avatar:metadata+notify, is notified with the
    avatar's id and fetches the data; its bytes are A's.
 4. B asks for A's vCard (xep_0054): its PHOTO is the avatar (XEP-0398).
 5. A stores bookmarks in private XML storage (xep_0048's default,
    XEP-0049): A2 is notified of the room as a Bookmarks 2 item and reads it
    from the urn:xmpp:bookmarks:1 node.
 6. A stores bookmarks through PEP (xep_0048 with xep_0223, node
    storage:bookmarks) with a second room: A2 is notified of that room; B,
    a contact, gets no bookmark notification and may not read the node.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_A and XMPP_PASSWORD_B.
"""

import asyncio
import base64
import hashlib
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.plugins.xep_0048 import Bookmarks  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import fail, section, step, xml  # noqa: E402

NS_META = "urn:xmpp:avatar:metadata"
NS_DATA = "urn:xmpp:avatar:data"
NS_BM2 = "urn:xmpp:bookmarks:1"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"


class PEPClient(chat.Client):
    """A chat.Client with slixmpp's PEP plugins; events is a queue of the
    pubsub notifications it gets, as (from bare JID, node, item ids)."""

    def __init__(self, name, jid, password, port, ca_file, bookmarks2=False):
        super().__init__(name, jid, password, port, ca_file)
        for p in ("xep_0030", "xep_0115", "xep_0060", "xep_0163", "xep_0084",
                  "xep_0049", "xep_0223", "xep_0048", "xep_0054"):
            self.register_plugin(p)
        if bookmarks2:
            self["xep_0163"].add_interest(NS_BM2)
        self.events = asyncio.Queue()
        self.available = asyncio.Queue()
        self.add_event_handler("pubsub_publish", self._on_publish)
        self.add_event_handler("presence_available", lambda p: self.available.put_nowait(p["from"].bare))

    def _on_publish(self, msg):
        items = msg.xml.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items")
        if items is None:
            return
        ids = [it.get("id") for it in items.findall(f"{{{NS_EVENT}}}item")]
        self.events.put_nowait((msg["from"].bare, items.get("node"), ids, msg))


async def expect_event(c, frm, node, item_id, T):
    """Wait for a notification of item_id on frm's node; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    while True:
        left = deadline - loop.time()
        if left <= 0:
            fail(f"{c.name}: no notification of {node} item {item_id} from {frm} within {T}s")
        try:
            got_from, got_node, ids, msg = await asyncio.wait_for(c.events.get(), left)
        except asyncio.TimeoutError:
            continue
        if got_from == frm and got_node == node and item_id in ids:
            return msg


def no_event(c, node):
    """Fail if c got a notification of node (what is queued now)."""
    while not c.events.empty():
        frm, got_node, ids, msg = c.events.get_nowait()
        if got_node == node:
            fail(f"{c.name}: got a notification of {node} from {frm}: {xml(msg)}")


async def sees(c, other, T):
    """Wait until c gets an available presence from a resource of other
    (the bare JID): then other's server lets c see other's presence."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    while True:
        left = deadline - loop.time()
        if left <= 0:
            fail(f"{c.name}: no available presence from {other} within {T}s")
        try:
            frm = await asyncio.wait_for(c.available.get(), left)
        except asyncio.TimeoutError:
            continue
        if frm == other:
            return


async def run(args, clients):
    T = args.step_timeout
    ja, jb = slixmpp.JID(args.jid_a), slixmpp.JID(args.jid_b)
    pw_a = os.environ["XMPP_PASSWORD_A"]
    a = PEPClient("A", ja, pw_a, args.port, args.ca_file)
    a2 = PEPClient("A2", slixmpp.JID(ja.bare + "/slix-a2"), pw_a, args.port, args.ca_file, bookmarks2=True)
    b = PEPClient("B", jb, os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    clients += [a, a2, b]

    section("1", "A, A2 and B log in with slixmpp's PEP plugins")
    await chat.start_sessions([a, a2, b], T, args.ca_file)
    for c in (a, a2, b):
        c.send_presence()
    step("A, A2, B: presence sent (with caps)")

    section("2", "A and B subscribe to each other's presence")
    a.send_presence_subscription(pto=jb.bare)
    await sees(a, jb.bare, T)
    await sees(b, ja.bare, T)
    step("A, B: each sees the other's presence")

    section("3", "A publishes an avatar; B is notified and fetches it")
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    avatar_id = hashlib.sha1(image).hexdigest()
    await a["xep_0084"].publish_avatar(image, timeout=T)
    await a["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(image)}, timeout=T)
    step(f"A: avatar {avatar_id} published")
    msg = await expect_event(b, ja.bare, NS_META, avatar_id, T)
    info = msg.xml.find(f".//{{{NS_META}}}info")
    if info is None or info.get("id") != avatar_id or info.get("bytes") != str(len(image)):
        fail(f"B: metadata notification {xml(msg)}")
    iq = await b["xep_0084"].retrieve_avatar(slixmpp.JID(ja.bare), avatar_id, timeout=T)
    data = iq.xml.find(f".//{{{NS_DATA}}}data")
    if data is None or base64.b64decode(data.text or "") != image:
        fail(f"B: avatar data {xml(iq)}")
    step("B: notified of the metadata, fetched the same bytes")

    section("4", "B asks for A's vCard: its PHOTO is the avatar (XEP-0398)")
    iq = await b["xep_0054"].get_vcard(slixmpp.JID(ja.bare), local=False, timeout=T)
    if iq["vcard_temp"]["PHOTO"]["BINVAL"] != image:
        fail(f"B: vCard of A {xml(iq)}")
    step("B: the vCard PHOTO is the PEP avatar")

    section("5", "A stores bookmarks in private XML; A2 sees them as Bookmarks 2")
    play = "theplay@conference.shakespeare.lit"
    bm = Bookmarks()
    bm.add_conference(play, "JC", name="The Play's the Thing", autojoin=True)
    await a["xep_0048"].set_bookmarks(bm, timeout=T)
    await expect_event(a2, ja.bare, NS_BM2, play, T)
    iq = await a2["xep_0060"].get_items(None, NS_BM2, timeout=T)
    confs = {it.get("id"): it.find(f"{{{NS_BM2}}}conference")
             for it in iq.xml.iter("{http://jabber.org/protocol/pubsub}item")}
    if confs.get(play) is None or confs[play].find(f"{{{NS_BM2}}}nick").text != "JC":
        fail(f"A2: bookmarks 2 {xml(iq)}")
    step("A2: notified of the room, read it from urn:xmpp:bookmarks:1")

    section("6", "A stores bookmarks through PEP (XEP-0223); A2 is notified, B is not")
    council = "council@conference.underhill.org"
    bm.add_conference(council, "Puck", name="Council of Oberon", autojoin=False)
    await a["xep_0048"].set_bookmarks(bm, method="xep_0223", timeout=T)
    await expect_event(a2, ja.bare, NS_BM2, council, T)
    step("A2: notified of the second room")
    await b["xep_0199"].ping(jid=slixmpp.JID(b.boundjid.domain), timeout=T)
    no_event(b, NS_BM2)
    no_event(b, "storage:bookmarks")
    try:
        iq = await b["xep_0060"].get_items(slixmpp.JID(ja.bare), NS_BM2, timeout=T)
        fail(f"B read A's bookmarks: {xml(iq)}")
    except IqError as e:
        if e.condition != "not-allowed":
            fail(f"B: reading A's bookmarks: {e.condition}, want not-allowed")
    step("B: no bookmark notification, not-allowed to read them")


def main():
    p = chat.scenario_args(__doc__.splitlines()[0], timeout=40)
    return chat.run_scenario(run, p.parse_args(), steps=6)


if __name__ == "__main__":
    sys.exit(main())
