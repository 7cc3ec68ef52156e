#!/usr/bin/python3
"""Group chat over federation: xmppd's rooms with Prosody and ejabberd users, theirs with xmppd's.

Run by scripts/interop/federation.sh (once a round, with the servers of the
round) with Debian's /usr/bin/python3. Three slixmpp clients with the
xep_0045 plugin's defaults, each logged in to its own server at its own
loopback address (federation.py's Client: STARTTLS, certificate verified
against --ca-file, slixmpp's default SASL settings): X on xmppd, P on
Prosody, E on ejabberd. Steps:

 1. X, P and E log in and send presence.
 2. X creates an instant room on conference.xmppd.test (status 201, then
    an empty submitted form).
 3. P and E join it over s2s; each sees the occupants, X sees both with
    their real JIDs (X is the moderator).
 4. X, P and E each send a groupchat message: all three get each one from
    the sender's nick with exactly the body sent.
 5. X revokes E's voice (role visitor): all three see E's new role; a
    groupchat message E sends then comes back to E as a forbidden error
    and reaches nobody.
 6. X kicks P with a reason: P gets its unavailable presence with 307, 110
    and the reason over s2s; X and E get it with 307.
 7. E and X leave the room.
 8. P creates a room on Prosody's conference.prosody.test; X joins it
    over s2s; X and P chat (exact bodies both ways); X leaves.
 9. E creates a room on ejabberd's conference.ejabberd.test; X joins it
    over s2s; X and E chat (exact bodies both ways); X leaves.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_X, XMPP_PASSWORD_P and XMPP_PASSWORD_E.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402

import federation as fed  # noqa: E402  (same directory)
import slixmpp_chat as chat  # noqa: E402
import slixmpp_muc as muc  # noqa: E402
from slixmpp_chat import fail, section, step, xml  # noqa: E402
from slixmpp_muc import codes, muc_item, presence_of  # noqa: E402


class Client(muc.MUCEvents, fed.Client):
    """federation.py's Client (its own server's address, no subscription
    answers) with slixmpp's xep_0045 plugin."""

    def __init__(self, name, jid, password, addr, port, ca_file):
        super().__init__(name, jid, password, addr, port, None, ca_file)
        self.setup_muc()

    def _on_error(self, stanza):
        # Message errors are events of MUCEvents; a presence error ends
        # join_muc_wait. Keep federation.py's record of them too.
        self.errors.append(stanza)


async def join_wait(c, room, nick, T):
    """slixmpp's join_muc_wait, with a failure that says what was awaited:
    slixmpp 1.8.3 sees a presence error only if it carries the MUC <x/>,
    which a server's bounce (an unreachable room) need not, and then waits
    for its timeout."""
    try:
        return await c["xep_0045"].join_muc_wait(room, nick, timeout=T)
    except asyncio.TimeoutError:
        fail(f"{c.name}: no self-presence and subject from {room} within {T:g}s "
             f"(an error without the MUC <x/> goes unseen by slixmpp)")


async def create_instant(c, room, nick, T):
    """c creates room with nick and accepts the default configuration
    (an instant room, XEP-0045 §10.1.2); returns c's self-presence."""
    pres, subject, _, history = await join_wait(c, room, nick, T)
    if not {110, 201} <= codes(pres):
        fail(f"{c.name}: creating {room}: self-presence with status {sorted(codes(pres))}, "
             f"want 110 and 201: {xml(pres)}")
    it = muc_item(pres)
    if it is None or it.get("affiliation") != "owner":
        fail(f"{c.name}: creator of {room} is not its owner: {xml(pres)}")
    form = c["xep_0004"].make_form(ftype="submit")
    await c["xep_0045"].set_room_config(room, form, timeout=T)
    step(f"{c.name}: created {room} as {nick} (status {sorted(codes(pres))}), instant room accepted")
    return pres


async def join(c, room, nick, want_others, T):
    """c joins room as nick; the occupants it is shown (itself aside) must
    be want_others; returns its self-presence."""
    pres, subject, occupants, _ = await join_wait(c, room, nick, T)
    if 110 not in codes(pres):
        fail(f"{c.name}: self-presence in {room} without 110: {xml(pres)}")
    others = sorted(str(p["from"].resource) for p in occupants if p["from"].resource != nick)
    if others != sorted(want_others):
        fail(f"{c.name}: occupants of {room} {others}, want {sorted(want_others)}")
    step(f"{c.name}: joined {room} as {pres['from'].resource} (role {muc_item(pres).get('role')}), "
         f"sees {others}")
    return pres


async def chat_round(room, senders, receivers, tag, T, stanza_id):
    """Each (client, nick) of senders sends a groupchat message; every
    client of receivers gets each, exactly."""
    for c, nick in senders:
        body = f"{nick} in {room.user}: ünïcödé & <xml/> — {tag}"
        await muc.send_and_expect(c, slixmpp.JID(f"{room.bare}/{nick}"), body, receivers, T,
                                  stanza_id=stanza_id)


async def leave(c, room, nick, T):
    """c leaves room and gets its own unavailable presence (110)."""
    c["xep_0045"].leave_muc(room, nick)
    await c.expect(f"its unavailable presence from {room}",
                   presence_of(slixmpp.JID(f"{room.bare}/{nick}"), available=False, need=(110,),
                               kind_wanted="unavailable"), T)
    step(f"{c.name}: left {room}")


async def run(args, clients):
    T = args.step_timeout
    x = Client("X", slixmpp.JID(args.jid_x), os.environ["XMPP_PASSWORD_X"], args.addr_x, args.port, args.ca_file)
    p = Client("P", slixmpp.JID(args.jid_p), os.environ["XMPP_PASSWORD_P"], args.addr_p, args.port, args.ca_file)
    e = Client("E", slixmpp.JID(args.jid_e), os.environ["XMPP_PASSWORD_E"], args.addr_e, args.port, args.ca_file)
    clients += [x, p, e]
    tag = f"{os.getpid()}-{args.label}"
    rid = f"fed-{os.getpid()}-{args.label.replace(':', '-')}"

    section("1", "X (xmppd), P (Prosody) and E (ejabberd) log in")
    await chat.start_sessions([x, p, e], T, args.ca_file)
    for c in (x, p, e):
        c.send_presence()
        await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=T)
    step("X, P, E: presence sent")

    room = slixmpp.JID(f"{rid}@conference.{x.boundjid.domain}")

    def occ(nick):
        return slixmpp.JID(f"{room.bare}/{nick}")

    section("2", f"X creates {room}")
    await create_instant(x, room, "X", T)

    section("3", "P and E join xmppd's room over s2s")
    await join(p, room, "P", ["X"], T)
    await join(e, room, "E", ["X", "P"], T)
    for c, nick in ((p, "P"), (e, "E")):
        pr = await x.expect(f"{nick}'s presence", presence_of(occ(nick)), T)
        real = muc_item(pr).get("jid")
        if real is None or slixmpp.JID(real).bare != c.boundjid.bare:
            fail(f"X (moderator): {nick}'s presence shows real JID {real!r}, want {c.boundjid.bare}")
    await p.expect("E's presence", presence_of(occ("E")), T)
    step("X: sees P and E with their real JIDs; P sees E")

    section("4", "X, P and E chat in xmppd's room")
    await chat_round(room, ((x, "X"), (p, "P"), (e, "E")), (x, p, e), tag, T, stanza_id=True)

    section("5", "X revokes E's voice")
    await x["xep_0045"].set_role(room, "E", "visitor", reason="quiet please", timeout=T)
    for c in (x, p, e):
        pr = await c.expect("E's presence as visitor",
                            lambda k, s: presence_of(occ("E"))(k, s) and muc_item(s).get("role") == "visitor", T)
        if (c is e) != (110 in codes(pr)):
            fail(f"{c.name}: E's visitor presence with status {sorted(codes(pr))}: {xml(pr)}")
    step("X, P, E: E is a visitor now")
    body = f"E without voice {tag}"
    e.send_message(mto=slixmpp.JID(room.bare), mbody=body, mtype="groupchat")
    err = await e.expect("the error for a visitor's message", lambda k, s: k == "error", T)
    if err["error"]["condition"] != "forbidden":
        fail(f"E: visitor's message refused with {err['error']['condition']}, want forbidden: {xml(err)}")
    step("E: its message as a visitor is refused: forbidden")

    section("6", "X kicks P")
    reason = f"kicked over s2s {tag}"
    await x["xep_0045"].set_role(room, "P", "none", reason=reason, timeout=T)
    for c in (p, x, e):
        pr = await c.expect("P's unavailable presence with 307",
                            presence_of(occ("P"), available=False, need=(307,)), T)
        if (c is p) != (110 in codes(pr)):
            fail(f"{c.name}: P's kick presence with status {sorted(codes(pr))}: {xml(pr)}")
        r = pr.xml.find(f"{{{muc.NS_MUC_USER}}}x/{{{muc.NS_MUC_USER}}}item/{{{muc.NS_MUC_USER}}}reason")
        if r is None or r.text != reason:
            fail(f"{c.name}: P's kick presence without the reason: {xml(pr)}")
    for c in (x, e):  # E's refused message reached nobody
        for kind, s in list(c.events._queue):
            if kind == "message" and s["body"] == body:
                fail(f"{c.name}: got the visitor's refused message: {xml(s)}")
    step("P, X, E: P's unavailable presence with 307 and the reason (110 for P)")

    section("7", "E and X leave xmppd's room")
    await leave(e, room, "E", T)
    await leave(x, room, "X", T)

    for n, owner, dom in (("8", p, "prosody"), ("9", e, "ejabberd")):
        remote = slixmpp.JID(f"{rid}@conference.{owner.boundjid.domain}")
        section(n, f"{owner.name} creates {remote} on {dom}; X joins it over s2s and they chat")
        await create_instant(owner, remote, owner.name, T)
        await join(x, remote, "X", [owner.name], T)
        await owner.expect("X's presence", presence_of(slixmpp.JID(f"{remote.bare}/X")), T)
        step(f"{owner.name}: sees X in its room")
        await chat_round(remote, ((owner, owner.name), (x, "X")), (owner, x), tag, T, stanza_id=False)
        await leave(x, remote, "X", T)
        await leave(owner, remote, owner.name, T)
    try:
        await x["xep_0030"].get_info(jid=room, timeout=T)
        fail(f"X: {room} still answers disco#info after everybody left")
    except IqError as err:
        if err.condition != "item-not-found":
            fail(f"X: disco#info of the empty room: {err.condition}, want item-not-found")
    step(f"X: {room} is gone once empty")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for s in ("x", "p", "e"):
        p.add_argument(f"--jid-{s}", required=True, help="full JID")
        p.add_argument(f"--addr-{s}", required=True, help="c2s (STARTTLS) address of its server")
    p.add_argument("--port", type=int, required=True, help="the c2s port of every server")
    p.add_argument("--ca-file", required=True, help="PEM CA certificate(s) to trust")
    p.add_argument("--label", default="")
    p.add_argument("--step-timeout", type=float, default=20)
    p.add_argument("--timeout", type=float, default=120, help="for the whole run")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    return chat.run_scenario(run, p.parse_args(), steps=9)


if __name__ == "__main__":
    sys.exit(main())
