#!/usr/bin/python3
"""slixmpp message archive queries (XEP-0313 with XEP-0059 paging) against xmppd.

Run by scripts/interop/slixmpp_mam.sh with Debian's /usr/bin/python3. Both
clients are the Client class of slixmpp_chat.py (STARTTLS, certificate
verified against --ca-file, slixmpp's default SASL settings) with slixmpp's
xep_0313 and xep_0059 plugins. Steps:

 1. A and B log in and send presence.
 2. A and B exchange --messages chat messages, taking turns; each waits for
    the other to receive its message before the next is sent, so that the
    order is known.
 3. A pages through its archive with B (slixmpp's RSM iterator, --page
    messages a page, oldest first): every message of step 2 comes exactly
    once, in the order sent, each a <result> with an id and the forwarded
    message from the right sender.
 4. B does the same with its own archive: the server archived both ends,
    each under its own ids (none shared with A's).
 5. A pages backwards from the last page (RSM <before/>): the same messages,
    newest first, with the same ids as in step 3.

One line per step on stdout; "FAIL: step N: ..." and exit 1 otherwise.
Passwords come from XMPP_PASSWORD_A and XMPP_PASSWORD_B.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import fail, section, step, xml  # noqa: E402


class MAMClient(chat.Client):
    """A chat.Client with slixmpp's MAM and RSM plugins."""

    def __init__(self, name, jid, password, port, ca_file):
        super().__init__(name, jid, password, port, ca_file)
        self.register_plugin("xep_0059")
        self.register_plugin("xep_0313")


async def archive(c, with_jid, page, reverse, T):
    """Page through c's archive with with_jid; returns the pages, each a
    list of (archive id, sender bare JID, body). Only the last page may
    say <fin complete='true'/>, and it must."""
    pages = []
    it = c["xep_0313"].retrieve(with_jid=with_jid, iterator=True, reverse=reverse,
                                rsm={"max": page})
    while True:
        try:
            iq = await it.next()
        except StopAsyncIteration:
            break
        got = []
        for m in iq["mam"]["results"]:
            res = m["mam_result"]
            fwd = res["forwarded"]["stanza"]
            if not res["id"]:
                fail(f"{c.name}: a <result> without id: {xml(m)}")
            if fwd["type"] == "error":
                fail(f"{c.name}: an archived error: {xml(m)}")
            got.append((res["id"], fwd["from"].bare, fwd["body"]))
        if reverse:
            got.reverse()
        fin = iq.xml.find("{urn:xmpp:mam:2}fin")
        complete = fin is not None and fin.get("complete") in ("true", "1")
        rsm = iq["mam_fin"]["rsm"]
        step(f"{c.name}: page {len(pages) + 1}: {len(got)} messages of {rsm['count']!r}, complete={complete}")
        pages.append((got, complete))
        if len(pages) > 50:
            fail(f"{c.name}: more than 50 pages: the paging does not end")
    for i, (_, complete) in enumerate(pages):
        if complete != (i == len(pages) - 1):
            fail(f"{c.name}: page {i + 1} of {len(pages)} says complete={complete}")
    return [got for got, _ in pages]


def check_archive(c, pages, sent, page, reverse):
    """Fail unless pages hold each of sent (sender, body) exactly once, in
    order (newest first if reverse), in pages of at most page messages."""
    flat = [m for p in pages for m in p]
    want = list(reversed(sent)) if reverse else sent
    got = [(frm, body) for _, frm, body in flat]
    ids = [i for i, _, _ in flat]
    if len(set(ids)) != len(ids):
        fail(f"{c.name}: an archive id came twice: {ids}")
    if got != want:
        fail(f"{c.name}: archive returned {got}\nwant {want}")
    if any(len(p) > page for p in pages) or len(pages) < -(-len(sent) // page):
        fail(f"{c.name}: pages of {[len(p) for p in pages]} messages, want at most {page} each")
    return ids


async def run(args, clients):
    T = args.step_timeout
    ja, jb = slixmpp.JID(args.jid_a), slixmpp.JID(args.jid_b)
    a = MAMClient("A", ja, os.environ["XMPP_PASSWORD_A"], args.port, args.ca_file)
    b = MAMClient("B", jb, os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    clients += [a, b]

    section("1", "A and B log in with slixmpp's xep_0313 and xep_0059 plugins")
    await chat.start_sessions([a, b], T, args.ca_file)
    for c in (a, b):
        c.send_presence()
        await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=T)
    step("A, B: presence sent")

    section("2", f"A and B exchange {args.messages} messages, taking turns")
    sent = []  # (sender bare JID, body), in order
    tag = os.getpid()
    for i in range(args.messages):
        frm, to = (a, b) if i % 2 == 0 else (b, a)
        body = f"message {i} from {frm.name} to {to.name}, ünïcödé & <xml> ({tag})"
        frm.send_message(mto=slixmpp.JID(to.boundjid.bare), mbody=body, mtype="chat")
        await chat.expect_message(to, body, frm.boundjid.bare, T)
        sent.append((frm.boundjid.bare, body))
    step(f"A, B: {len(sent)} messages sent and received")

    section("3", f"A pages through its archive with B, {args.page} a page")
    pages = await archive(a, slixmpp.JID(jb.bare), args.page, False, T)
    ids_a = check_archive(a, pages, sent, args.page, False)
    step(f"A: every message once, in order, in {len(pages)} pages")

    section("4", "B pages through its own archive: both ends were archived")
    pages = await archive(b, slixmpp.JID(ja.bare), args.page, False, T)
    ids_b = check_archive(b, pages, sent, args.page, False)
    if set(ids_a) & set(ids_b):
        fail(f"A's and B's archives share ids {sorted(set(ids_a) & set(ids_b))}: each archive has its own")
    step(f"B: every message once, in order, in {len(pages)} pages")

    section("5", "A pages backwards from the last page (RSM <before/>)")
    pages = await archive(a, slixmpp.JID(jb.bare), args.page, True, T)
    ids_back = check_archive(a, pages, sent, args.page, True)
    if list(reversed(ids_back)) != ids_a:
        fail(f"A: backwards ids {ids_back}, want those of step 3 reversed {ids_a}")
    step(f"A: every message once, newest first, in {len(pages)} pages, same ids")


def main():
    p = chat.scenario_args(__doc__.splitlines()[0], timeout=40)
    p.add_argument("--messages", type=int, default=11, help="messages A and B exchange")
    p.add_argument("--page", type=int, default=4, help="RSM max of each query")
    return chat.run_scenario(run, p.parse_args(), steps=5)


if __name__ == "__main__":
    sys.exit(main())
