#!/usr/bin/python3
"""slixmpp stream management (XEP-0198) resumption against xmppd.

Run by scripts/interop/slixmpp_sm.sh with Debian's /usr/bin/python3. Both
clients are the Client class of slixmpp_chat.py (STARTTLS, certificate
verified against --ca-file, slixmpp's default SASL settings); A also has
slixmpp's xep_0198 plugin with its defaults, which enables stream management
with resume='true' after bind and, on the next connect of the same client
object, resumes instead of binding. Steps:

 1. A logs in (SM enabled with resumption: an id and resume='true'), B logs
    in (no SM); both send presence.
 2. B sends 3 messages (batch 1) to A's bare JID; A gets each once.
 3. A stops reading its socket (as a frozen phone app: the kernel buffers
    what comes); B sends batch 2 and waits until bytes of it are in A's
    socket buffer, so the server has sent them and A has not handled them
    (they must come again on resumption: the server's "resent" count).
    Then A's TCP connection is cut abruptly: SO_LINGER 0 and the transport
    aborted, so the server gets a reset, never </stream:stream> nor a TLS
    close_notify. B at once sends batch 3 (these may reach the server before
    it notices the reset), waits for "c2s session hibernating" in the server
    log (--server-log), then sends batch 4, to A's bare and full JIDs.
 4. The same A object connects again; slixmpp sends <resume previd h/> after
    SASL and must get <resumed/> (session_resumed), never a new bind
    (session_start again) nor <failed/>; A keeps its full JID. A must then
    receive batches 2, 3 and 4, every message exactly once and in the order B
    sent them, and no message of batch 1 again; then A and B chat once more.

The server's side (one bind, one resumption for A) is checked by
slixmpp_sm.sh from the server log. One line per step on stdout;
"FAIL: step N: ..." and exit 1 otherwise. Passwords come from
XMPP_PASSWORD_A and XMPP_PASSWORD_B.
"""

import asyncio
import fcntl
import os
import socket
import struct
import sys
import termios
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import Failure, fail, section, step, xml  # noqa: E402



class SMClient(chat.Client):
    """A chat.Client with slixmpp's XEP-0198 plugin (default settings) that
    records the stream management events."""

    def __init__(self, name, jid, password, port, ca_file):
        super().__init__(name, jid, password, port, ca_file)
        self.register_plugin("xep_0198")
        self.sm_events = []  # (event, stanza XML), in order
        self.starts = 0  # session_start events: one per bind
        loop = asyncio.get_running_loop()
        self.enabled = loop.create_future()
        self.resumed = loop.create_future()
        self.lost = loop.create_future()
        for ev in ("sm_enabled", "sm_failed", "session_resumed", "sm_disabled"):
            self.add_event_handler(ev, self._make_sm_event(ev))
        self.add_event_handler("session_start", self._count_start)
        self.add_event_handler("disconnected", self._on_lost)

    def _make_sm_event(self, ev):
        def handler(arg=None):
            self.sm_events.append((ev, xml(arg) if arg is not None else ""))
            if ev == "sm_enabled" and not self.enabled.done():
                self.enabled.set_result(True)
            if ev == "sm_failed" and not self.enabled.done():
                self.enabled.set_exception(Failure(
                    f"{self.name}: <failed/> in answer to <enable/>: {xml(arg)}"))
            if ev == "session_resumed" and not self.resumed.done():
                self.resumed.set_result(True)
            if ev == "sm_failed" and not self.resumed.done():
                self.resumed.set_exception(Failure(
                    f"{self.name}: <failed/> from the server instead of <resumed/>: {xml(arg)}"))
        return handler

    def _count_start(self, _):
        self.starts += 1
        if self.starts > 1 and not self.resumed.done():
            self.resumed.set_exception(Failure(
                f"{self.name}: session_start again (a new bind) instead of a resumption; "
                f"SM events: {self.sm_events}"))

    def _on_lost(self, _=None):
        if not self.lost.done():
            self.lost.set_result(True)

    def _after_start(self, event, arg):
        # Before the kill a disconnection is a failure; after it, expected.
        if event in ("stream_error", "connection_failed") and not self.resumed.done():
            self.resumed.set_exception(Failure(f"{self.name}: {event} while resuming: {arg!r}"))
        super()._after_start(event, arg)

    def deafen(self):
        """Stop reading (the TLS transport's pause_reading: no more data for
        slixmpp's parser, so nothing more is handled); return an async
        function that waits until some bytes have come in unread, in the
        transport's buffer or the kernel's, and returns how many."""
        self.transport.pause_reading()
        transport = self.transport
        fd = transport.get_extra_info("socket").fileno()

        async def unread(timeout):
            deadline = time.monotonic() + timeout
            while True:
                kernel = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
                n = transport.get_read_buffer_size() + kernel
                if n > 0:
                    return n
                if time.monotonic() > deadline:
                    fail(f"{self.name}: nothing of B's messages reached A's socket "
                         f"within {timeout}s")
                await asyncio.sleep(0.02)
        return unread

    def kill(self):
        """Cut the TCP connection as a phone losing its network would look
        to the server: a reset, no </stream:stream>, no TLS close_notify
        (slixmpp's own abort() first closes the transport, which may send
        close_notify)."""
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


async def receive(c, want, from_bare, timeout, quiet):
    """Receive messages until every body of want has come (or timeout), then
    quiet seconds more; fail on a missing, duplicated, unexpected or
    reordered message."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < len(want) or quiet > 0:
        if len(got) >= len(want):
            left, quiet = quiet, 0  # all there: wait for (wrong) extra copies
        else:
            left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            msg = await asyncio.wait_for(c.inbox.get(), left)
        except asyncio.TimeoutError:
            continue
        if msg["type"] == "error":
            fail(f"{c.name}: message error from {msg['from']}: {xml(msg)}")
        if msg["from"].bare != from_bare:
            fail(f"{c.name}: message from {msg['from']}, want {from_bare}: {xml(msg)}")
        got.append(msg["body"])
    missing = [b for b in want if b not in got]
    dups = sorted({b for b in got if got.count(b) > 1})
    extra = [b for b in got if b not in want]
    if missing or dups or extra:
        fail(f"{c.name}: received {got}; want each of {want} exactly once: "
             f"missing {missing}, duplicated {dups}, unexpected {extra}")
    if got != want:
        fail(f"{c.name}: received {got}, want them in the order sent {want} "
             "(RFC 6120 §10.1)")
    return got


async def wait_log(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if text in line:
                    return line.rstrip("\n")
        await asyncio.sleep(0.05)
    fail(f"no line with {text!r} in the server log {path} within {timeout}s")


async def ping(c, T):
    """A ping answered by the server: it has read what c sent before."""
    await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=T)


async def run(args, clients):
    T = args.step_timeout
    ja, jb = slixmpp.JID(args.jid_a), slixmpp.JID(args.jid_b)
    a = SMClient("A", ja, os.environ["XMPP_PASSWORD_A"], args.port, args.ca_file)
    b = chat.Client("B", jb, os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    clients += [a, b]
    sm = a["xep_0198"]

    section("1", "A logs in with stream management (slixmpp xep_0198 defaults), B without")
    await chat.start_sessions([a, b], T, args.ca_file)
    # slixmpp sends <enable/> after session_start (its SM feature comes
    # after bind in feature order), so <enabled/> comes later.
    try:
        await asyncio.wait_for(asyncio.shield(a.enabled), T)
    except asyncio.TimeoutError:
        fail(f"A: no <enabled/> within {T}s (SM events {a.sm_events})")
    enabled = [x for ev, x in a.sm_events if ev == "sm_enabled"]
    if not enabled or not sm.sm_id:
        fail(f"A: stream management not enabled with an id (SM events {a.sm_events})")
    step(f"A: {enabled[0]} (window {sm.window}, allow_resume {sm.allow_resume})")
    if "resume" not in enabled[0]:
        fail(f"A: <enabled/> without resume: {enabled[0]}")
    for c in (a, b):
        c.send_presence()
        await ping(c, T)
    step("A, B: presence sent")
    full_a = a.boundjid.full

    tag = os.getpid()
    section("2", "B sends batch 1 to A; A gets each message once")
    batch1 = [f"batch 1 #{i} from B ({tag})" for i in range(3)]
    for body in batch1:
        b.send_message(mto=slixmpp.JID(ja.bare), mbody=body, mtype="chat")
    await receive(a, batch1, jb.bare, T, 0)
    await ping(a, T)
    step(f"A: received batch 1 ({len(batch1)} messages); A's handled count {sm.handled}")

    section("3", "A stops reading, B sends batch 2, A's TCP connection is reset "
            "(no stream close), B sends batches 3 and 4")
    handled = sm.handled
    unread = a.deafen()
    step(f"A: stopped reading its socket (handled count {handled})")
    batch2 = [f"batch 2 #{i} from B, written to A's socket, never read ({tag})"
              for i in range(3)]
    for body in batch2:
        b.send_message(mto=slixmpp.JID(ja.bare), mbody=body, mtype="chat")
    await ping(b, T)
    n = await unread(T)
    step(f"B: sent batch 2 ({len(batch2)} messages); {n} bytes of it reached A's kernel "
         f"buffer unread (sent by the server, not handled by A)")
    a.kill()
    await asyncio.wait_for(asyncio.shield(a.lost), T)
    step(f"A: connection reset (SO_LINGER 0, transport aborted); slixmpp keeps its SM id: "
         f"{sm.sm_id is not None}; handled count {sm.handled}")
    if sm.handled != handled:
        fail(f"A: handled count {sm.handled}, want {handled}: A read something after going deaf")
    batch3 = [f"batch 3 #{i} from B, sent right after the reset ({tag})" for i in range(3)]
    for body in batch3:
        b.send_message(mto=slixmpp.JID(ja.bare), mbody=body, mtype="chat")
    await ping(b, T)
    step(f"B: sent batch 3 ({len(batch3)} messages to {ja.bare})")
    line = await wait_log(args.server_log, 'msg="c2s session hibernating"', T)
    step(f"server: {line}")
    batch4 = [f"batch 4 #{i} from B, to the hibernating session ({tag})" for i in range(4)]
    for i, body in enumerate(batch4):
        to = slixmpp.JID(full_a if i % 2 else ja.bare)
        b.send_message(mto=to, mbody=body, mtype="chat")
    await ping(b, T)
    step(f"B: sent batch 4 ({len(batch4)} messages, to {ja.bare} and {full_a})")
    if not b.inbox.empty():
        fail(f"B: got something back for a hibernating A (should be queued): "
             f"{xml(b.inbox.get_nowait())}")

    section("4", "A connects again and resumes; it gets batches 2, 3 and 4 exactly once")
    a.connect(address=(a.addr, a.port), force_starttls=True, disable_starttls=False,
              use_ssl=False)
    try:
        await asyncio.wait_for(asyncio.shield(a.resumed), T)
    except asyncio.TimeoutError:
        fail(f"A: no <resumed/> within {T}s (SM events {a.sm_events}, "
             f"features {sorted(a.features)})")
    resumed = [x for ev, x in a.sm_events if ev == "session_resumed"]
    step(f"A: {resumed[0]}")
    a.check_security()
    if a.boundjid.full != full_a:
        fail(f"A: full JID {a.boundjid.full} after resumption, want {full_a}")
    if a.starts != 1:
        fail(f"A: {a.starts} session_start events, want 1 (resumption is no new session)")
    meanwhile = batch2 + batch3 + batch4
    await receive(a, meanwhile, jb.bare, T, args.quiet)
    step(f"A: received batches 2, 3 and 4 ({len(meanwhile)} messages) exactly once, "
         f"in order, and nothing of batch 1 again ({args.quiet:g} s quiet afterwards)")
    await ping(a, T)
    body = f"A is back ({tag})"
    a.send_message(mto=slixmpp.JID(jb.bare), mbody=body, mtype="chat")
    msg = await chat.expect_message(b, body, ja.bare, T)
    if msg["from"].full != full_a:
        fail(f"B: message from {msg['from']}, want A's resumed full JID {full_a}")
    step(f"B: received from {msg['from']}: {body!r}")
    sm.request_ack()
    await ping(a, T)
    step(f"A: handled {sm.handled}, server acked {sm.last_ack} of A's {sm.seq} stanzas, "
         f"{len(sm.unacked_queue)} unacked")


def main():
    p = chat.scenario_args(__doc__.splitlines()[0], timeout=40)
    p.add_argument("--server-log", required=True, help="xmppd's log file (text format)")
    p.add_argument("--quiet", type=float, default=1,
                   help="seconds A waits for a (wrong) extra copy after the resumption")
    return chat.run_scenario(run, p.parse_args(), steps=4)


if __name__ == "__main__":
    sys.exit(main())
