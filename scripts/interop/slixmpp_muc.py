#!/usr/bin/python3
"""slixmpp multi-user chat (XEP-0045, slixmpp's xep_0045 plugin) against xmppd.

Run by scripts/interop/slixmpp_muc.sh with Debian's /usr/bin/python3. The
clients are the Client class of slixmpp_chat.py (STARTTLS, certificate
verified against --ca-file, slixmpp's default SASL settings) with slixmpp's
xep_0045 plugin and its defaults: A is alice, B is bob, C is carol. Steps:

 1. A, B and C log in and send presence.
 2. A creates a room at conference.DOMAIN (join_muc_wait: status 201 and
    110, owner and moderator, the room locked), fetches the muc#roomconfig
    form and submits it back with a name and a description as slixmpp does
    it (the whole form, every field, type submit); the room's disco#info
    then has that name.
 3. B joins: B gets A's presence and its own (110), A gets B's presence
    (participant, no affiliation).
 4. A and B each send a groupchat message: both get each one, reflected
    to the sender too, from room/nick, with exactly the body sent.
 5. B changes its nick: A and B get the old nick's unavailable presence
    with 303 and the new nick, then the new nick's presence; a message of
    B's then comes from the new nick.
 6. A sets the subject: A and B get it from A's nick, exactly.
 7. C joins later: its history is exactly the three messages of steps 4
    and 5, in order, from the nicks of then, each with a <delay/> from the
    room; then the subject of step 6.
 8. C sends B a private message through the room (room/nick, type chat):
    B gets it from C's occupant JID with the muc#user <x/>; B answers the
    same way and C gets it.
 9. A kicks B with a reason (set_role none): B gets its unavailable
    presence with 307 and 110 and the reason, A and C get it with 307;
    a groupchat message B sends afterwards is refused (not-acceptable).
10. A and C leave.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_A, XMPP_PASSWORD_B and XMPP_PASSWORD_C.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError, PresenceError  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import StanzaPath  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import fail, section, step, xml  # noqa: E402

NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_DELAY = "urn:xmpp:delay"


class MUCEvents:
    """What a chat.Client (or a subclass) needs for group chat: slixmpp's
    xep_0045 plugin (and xep_0030 for disco), set up by setup_muc. Every
    groupchat message, subject, MUC presence, message error and MUC
    unavailable presence it gets goes to its queue `events` as ("message" |
    "subject" | "presence" | "error" | "unavailable", stanza); private
    messages through the room (type chat) go to the inbox of chat.Client.
    federation_muc.py mixes it into federation.py's Client."""

    def setup_muc(self):
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.events = asyncio.Queue()
        self.add_event_handler("groupchat_message", lambda m: self.events.put_nowait(("message", m)))
        self.add_event_handler("groupchat_subject", lambda m: self.events.put_nowait(("subject", m)))
        self.add_event_handler("groupchat_presence", lambda p: self.events.put_nowait(("presence", p)))
        self.add_event_handler("groupchat_message_error", lambda m: self.events.put_nowait(("error", m)))
        # After leave_muc the plugin forgets the room and no longer turns
        # its presences into groupchat_presence (nor into presence events:
        # it marks occupant JIDs ignore_updates): see those stanzas as such.
        self.register_handler(Callback("interop MUC unavailable", StanzaPath("presence@type=unavailable/muc"),
                                       lambda p: self.events.put_nowait(("unavailable", p))))

    def _on_message(self, msg):
        if msg["type"] not in ("groupchat", "error"):  # errors are events
            self.inbox.put_nowait(msg)

    async def expect(self, what, pred, T):
        """The first event in the queue that pred(kind, stanza) accepts;
        a message error that it does not accept fails at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + T
        seen = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                fail(f"{self.name}: no {what} within {T}s (got meanwhile: {seen or 'nothing'})")
            try:
                kind, st = await asyncio.wait_for(self.events.get(), left)
            except asyncio.TimeoutError:
                continue
            if pred(kind, st):
                return st
            if kind == "error":
                fail(f"{self.name}: message error while waiting for {what}: {xml(st)}")
            seen.append(f"{kind} from {st['from']}")

    def drain(self):
        """Forget the queued events (all of them were looked at)."""
        while not self.events.empty():
            self.events.get_nowait()


class MUCClient(MUCEvents, chat.Client):
    """A chat.Client on 127.0.0.1 with MUCEvents."""

    def __init__(self, name, jid, password, port, ca_file):
        super().__init__(name, jid, password, port, ca_file)
        self.setup_muc()


def codes(st):
    """The muc#user status codes of st, as a set of ints."""
    x = st.xml.find(f"{{{NS_MUC_USER}}}x")
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(f"{{{NS_MUC_USER}}}status") if s.get("code", "").isdigit()}


def muc_item(st):
    """The muc#user <item/> of st (an ElementTree element) or None."""
    return st.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")


def presence_of(occupant, available=True, need=(), kind_wanted="presence"):
    """An event predicate: a presence from the occupant JID (available or
    unavailable) with at least the status codes in need."""
    def pred(kind, p):
        if kind != kind_wanted or p["from"] != occupant:
            return False
        if (p["type"] == "unavailable") == available:
            return False
        return set(need) <= codes(p)
    return pred


def groupchat(occupant, body):
    """An event predicate: a groupchat message from occupant with body."""
    def pred(kind, m):
        return kind == "message" and m["from"] == occupant and m["body"] == body
    return pred


def check_no_history_delay(c, m):
    """Live messages must not carry a delay: that marks history."""
    if m.xml.find(f"{{{NS_DELAY}}}delay") is not None:
        fail(f"{c.name}: a live groupchat message carries a <delay/>: {xml(m)}")


async def send_and_expect(sender, nick_jid, body, receivers, T, stanza_id=True):
    """sender sends body to the room; every receiver (the sender too) must
    get it from nick_jid, exactly, without delay, and with stanza_id with a
    XEP-0359 stanza-id by the room."""
    sender.send_message(mto=slixmpp.JID(nick_jid.bare), mbody=body, mtype="groupchat")
    for r in receivers:
        m = await r.expect(f"groupchat {body!r} from {nick_jid}", groupchat(nick_jid, body), T)
        check_no_history_delay(r, m)
        sid = m.xml.find("{urn:xmpp:sid:0}stanza-id")
        if stanza_id and (sid is None or sid.get("by") != nick_jid.bare):
            fail(f"{r.name}: groupchat without a stanza-id by the room: {xml(m)}")
    step(f"{sender.name}: {body!r} reached {', '.join(r.name for r in receivers)} from {nick_jid.resource}")


async def run(args, clients):
    T = args.step_timeout
    a = MUCClient("A", slixmpp.JID(args.jid_a), os.environ["XMPP_PASSWORD_A"], args.port, args.ca_file)
    b = MUCClient("B", slixmpp.JID(args.jid_b), os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    c = MUCClient("C", slixmpp.JID(args.jid_c), os.environ["XMPP_PASSWORD_C"], args.port, args.ca_file)
    clients += [a, b, c]
    service = f"conference.{a.boundjid.domain}"
    room = slixmpp.JID(f"interop-{os.getpid()}@{service}")
    tag = os.getpid()

    def occ(nick):
        return slixmpp.JID(f"{room.bare}/{nick}")

    section("1", "A, B and C log in with slixmpp's xep_0045 plugin")
    await chat.start_sessions([a, b, c], T, args.ca_file)
    for cl in (a, b, c):
        cl.send_presence()
        await cl["xep_0199"].ping(jid=slixmpp.JID(cl.boundjid.domain), timeout=T)
    step("A, B, C: presence sent")

    section("2", f"A creates {room} and configures it through the muc#roomconfig form")
    pres, subject, occupants, history = await a["xep_0045"].join_muc_wait(room, "Alice", timeout=T)
    if not {110, 201} <= codes(pres):
        fail(f"A: self-presence of a new room without 110 and 201: {xml(pres)}")
    it = muc_item(pres)
    if it is None or it.get("affiliation") != "owner" or it.get("role") != "moderator":
        fail(f"A: creator is not owner/moderator: {xml(pres)}")
    step(f"A: created the room (status {sorted(codes(pres))}), owner and moderator; "
         f"subject {subject['subject']!r}, occupants {[p['from'].resource for p in occupants]}, "
         f"{len(history)} history messages")
    if [p["from"] for p in occupants] != [occ("Alice")] or history or subject["subject"]:
        fail("A: a new room with other occupants, history or a subject")
    # While the room is locked, nobody else may enter (XEP-0045 §10.1.1).
    try:
        await b["xep_0045"].join_muc_wait(room, "Bob", timeout=T)
        fail("B entered the room while it was locked")
    except PresenceError as e:
        if e.condition != "item-not-found":
            fail(f"B: entering the locked room: {e.condition}, want item-not-found")
    step("B: the locked room refuses it (item-not-found)")
    form = await a["xep_0045"].get_room_config(room, timeout=T)
    fields = form.get_fields()
    for var in ("muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
                "muc#roomconfig_membersonly", "muc#roomconfig_whois"):
        if var not in fields:
            fail(f"A: the room configuration form lacks {var}: {xml(form)}")
    name = f"Interop room ünïcödé & <xml> {tag}"
    fields["muc#roomconfig_roomname"]["value"] = name
    fields["muc#roomconfig_roomdesc"]["value"] = "slixmpp_muc.py"
    await a["xep_0045"].set_room_config(room, form, timeout=T)
    step(f"A: submitted the form back ({len(fields)} fields) with roomname {name!r}")
    info = await a["xep_0030"].get_info(jid=room, timeout=T)
    idents = [i for i in info["disco_info"]["identities"] if i[0] == "conference"]
    if not idents or idents[0][3] != name:
        fail(f"A: room disco#info identities {info['disco_info']['identities']}, want conference/text {name!r}")
    feats = info["disco_info"]["features"]
    for f in ("http://jabber.org/protocol/muc", "muc_open", "muc_unmoderated"):
        if f not in feats:
            fail(f"A: room disco#info lacks {f}: {feats}")
    step("A: the room's disco#info has the new name, muc, muc_open, muc_unmoderated")
    a.drain()

    section("3", "B joins the room")
    pres, _, occupants, _ = await b["xep_0045"].join_muc_wait(room, "Bob", timeout=T)
    if 110 not in codes(pres) or 201 in codes(pres):
        fail(f"B: self-presence {sorted(codes(pres))}, want 110 and not 201: {xml(pres)}")
    it = muc_item(pres)
    if it is None or it.get("role") != "participant" or it.get("affiliation") != "none":
        fail(f"B: joined as {xml(pres)}, want participant without affiliation")
    # slixmpp's occupant list includes the joining user's own presence.
    if sorted(str(p["from"].resource) for p in occupants) != ["Alice", "Bob"]:
        fail(f"B: occupants {[str(p['from']) for p in occupants]}, want Alice and Bob")
    p = await a.expect("B's presence in the room", presence_of(occ("Bob")), T)
    it = muc_item(p)
    if it is None or it.get("role") != "participant" or 110 in codes(p):
        fail(f"A: B's presence {xml(p)}")
    if it.get("jid") is not None and slixmpp.JID(it.get("jid")).bare != b.boundjid.bare:
        fail(f"A: B's real JID shown as {it.get('jid')}")
    step(f"B: joined as participant (A sees it, real JID to A the moderator: {it.get('jid')})")
    b.drain()

    section("4", "A and B chat in the room")
    sent = []  # (nick, body) of the history C will get
    for sender, nick, body in ((a, "Alice", f"hello room from Alice, ünïcödé & <xml> {tag}"),
                               (b, "Bob", f"hi Alice, Bob here — {tag}")):
        await send_and_expect(sender, occ(nick), body, (a, b), T)
        sent.append((nick, body))

    section("5", "B changes its nick to Bobby")
    b.send_presence(pto=occ("Bobby"))
    for cl in (a, b):
        p = await cl.expect("the old nick's unavailable presence with 303",
                            presence_of(occ("Bob"), available=False, need=(303,)), T)
        it = muc_item(p)
        if it is None or it.get("nick") != "Bobby":
            fail(f"{cl.name}: 303 presence without nick='Bobby': {xml(p)}")
        if (cl is b) != (110 in codes(p)):
            fail(f"{cl.name}: 303 presence with status {sorted(codes(p))}: {xml(p)}")
        p = await cl.expect("the new nick's presence", presence_of(occ("Bobby")), T)
        if (cl is b) != (110 in codes(p)):
            fail(f"{cl.name}: new nick's presence with status {sorted(codes(p))}: {xml(p)}")
    step("A, B: Bob left with 303 nick=Bobby, Bobby entered (110 for B only)")
    body = f"Bob is Bobby now {tag}"
    await send_and_expect(b, occ("Bobby"), body, (a, b), T)
    sent.append(("Bobby", body))

    section("6", "A sets the subject")
    topic = f"Topic of the day: interop ünïcödé {tag}"
    a["xep_0045"].set_subject(room, topic)
    for cl in (a, b):
        m = await cl.expect("the subject", lambda k, m: k == "subject" and m["from"] == occ("Alice"), T)
        if m["subject"] != topic:
            fail(f"{cl.name}: subject {m['subject']!r}, want {topic!r}")
    step(f"A, B: subject {topic!r} from Alice")

    section("7", "C joins later and gets the history, then the subject")
    pres, subject, occupants, history = await c["xep_0045"].join_muc_wait(room, "Carol", timeout=T)
    got_occ = sorted(str(p["from"].resource) for p in occupants)
    if got_occ != ["Alice", "Bobby", "Carol"]:
        fail(f"C: occupants {got_occ}, want Alice, Bobby and Carol")
    got = [(m["from"].resource, m["body"]) for m in history]
    if got != sent:
        fail(f"C: history {got}\nwant {sent}")
    for m in history:
        d = m.xml.find(f"{{{NS_DELAY}}}delay")
        if d is None or d.get("from") != room.bare or not d.get("stamp"):
            fail(f"C: history message without <delay from='{room.bare}' stamp/>: {xml(m)}")
    if subject["subject"] != topic or subject["from"] != occ("Alice"):
        fail(f"C: subject {subject['subject']!r} from {subject['from']}, want {topic!r} from Alice")
    step(f"C: {len(history)} history messages, exact, in order, delayed by the room; subject {topic!r}")
    for cl in (a, b):
        await cl.expect("C's presence", presence_of(occ("Carol")), T)
    step("A, B: see Carol")

    section("8", "C and B exchange private messages through the room")
    pm = f"psst Bobby, a private word from Carol {tag}"
    c.send_message(mto=occ("Bobby"), mbody=pm, mtype="chat")
    m = await chat.expect_message(b, pm, room.bare, T)
    if m["from"] != occ("Carol") or m.xml.find(f"{{{NS_MUC_USER}}}x") is None:
        fail(f"B: private message {xml(m)}, want from {occ('Carol')} with the muc#user <x/>")
    step(f"B: got C's private message from {m['from']}")
    reply = f"thanks Carol, from Bobby {tag}"
    b.send_message(mto=occ("Carol"), mbody=reply, mtype="chat")
    m = await chat.expect_message(c, reply, room.bare, T)
    if m["from"] != occ("Bobby"):
        fail(f"C: private reply from {m['from']}, want {occ('Bobby')}")
    step(f"C: got B's private reply from {m['from']}")
    if not a.inbox.empty():
        fail(f"A got a private message meant for others: {xml(a.inbox.get_nowait())}")

    section("9", "A kicks B")
    reason = f"kicked by the interop test {tag}"
    await a["xep_0045"].set_role(room, "Bobby", "none", reason=reason, timeout=T)
    step("A: kick (role none) accepted")
    for cl in (a, b, c):
        p = await cl.expect("B's unavailable presence with 307",
                            presence_of(occ("Bobby"), available=False, need=(307,)), T)
        if (cl is b) != (110 in codes(p)):
            fail(f"{cl.name}: kick presence with status {sorted(codes(p))}: {xml(p)}")
        r = p.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item/{{{NS_MUC_USER}}}reason")
        if r is None or r.text != reason:
            fail(f"{cl.name}: kick presence without the reason: {xml(p)}")
    step("A, B, C: Bobby's unavailable presence with 307 and the reason (110 for B)")
    b.send_message(mto=slixmpp.JID(room.bare), mbody=f"still here? {tag}", mtype="groupchat")
    e = await b.expect("an error for a message after the kick", lambda k, m: k == "error", T)
    if e["error"]["condition"] != "not-acceptable":
        fail(f"B: after the kick: {e['error']['condition']}, want not-acceptable: {xml(e)}")
    step("B: a groupchat message after the kick is refused: not-acceptable")

    section("10", "A and C leave")
    for cl, nick in ((c, "Carol"), (a, "Alice")):
        cl["xep_0045"].leave_muc(room, nick)
        await cl.expect("its own unavailable presence",
                        presence_of(occ(nick), available=False, need=(110,), kind_wanted="unavailable"), T)
    step("C, A: left with 110")
    try:
        await b["xep_0030"].get_info(jid=room, timeout=T)
        fail("the empty temporary room still answers disco#info")
    except IqError as e:
        if e.condition != "item-not-found":
            fail(f"disco#info of the empty room: {e.condition}, want item-not-found")
    step("the empty temporary room is gone (item-not-found)")


def main():
    p = chat.scenario_args(__doc__.splitlines()[0], timeout=50)
    p.add_argument("--jid-c", required=True, help="full JID")
    return chat.run_scenario(run, p.parse_args(), steps=10)


if __name__ == "__main__":
    sys.exit(main())
