#!/usr/bin/python3
"""Two slixmpp clients on two federated servers: chat and mutual subscription.

Run by scripts/interop/federation.sh with Debian's /usr/bin/python3 (the first
python3 on PATH may lack Debian's python3-slixmpp). User A logs in to server A
and user B to server B; each server is reached at its own loopback address
(never through DNS), over STARTTLS with a certificate that must verify against
--ca-file for the JID's domain, with one given SASL mechanism. Then, with one
log line per step and a time limit on each:

  1. both fetch their roster and send initial presence (a ping answered by
     their own server proves it was read);
  2. A sends B's bare JID a chat message, B must receive exactly that body
     from A's bare JID; B answers, A must receive exactly that;
  3. A subscribes to B's presence, B must receive the request and approves
     it, A must receive 'subscribed'; then B subscribes to A, A approves, B
     must receive 'subscribed' (every hop crosses the s2s link);
  4. each must end with the other in its roster (fetched again from its
     server) with subscription 'both' and no pending ask, and must have
     received the other's available presence.

An error stanza (message or presence) from anywhere is a failure, reported
with its condition and text. Passwords come from the environment
(XMPP_PASSWORD_A, XMPP_PASSWORD_B) so that they do not show in the process
list. Exit status 0 only if everything went right.
"""

import argparse
import asyncio
import logging
import os
import ssl
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import slixmpp  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import Failure  # noqa: E402

START = time.monotonic()
LAST_STEP = "start"
LABEL = ""


def step(msg):
    global LAST_STEP
    LAST_STEP = msg
    print(f"[federation.py {LABEL} {time.monotonic() - START:6.2f}s] {msg}", flush=True)


def describe_error(stanza):
    err = stanza["error"]
    return f"{err['type']}/{err['condition']}" + (f" ({err['text']})" if err["text"] else "")


class Client(chat.Client):
    """The Client of slixmpp_chat.py (pinned to one address and one CA file,
    and to one SASL mechanism only when --mech is given) that records every presence and error stanza it receives and
    leaves all subscription decisions to the test."""

    def __init__(self, name, jid, password, addr, port, mech, ca_file):
        super().__init__(name, jid, password, port, ca_file, addr=addr, mech=mech)
        # No automatic answers to subscription requests: the test sends
        # every subscription stanza itself.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.presences = []  # every presence received, in order
        self.presence_event = asyncio.Event()
        self.errors = []  # message and presence errors received
        self.add_event_handler("presence", self._on_presence)

    def _after_start(self, event, arg):
        if event != "disconnected" or not getattr(self, "closing", False):
            step(f"{self.name}: {event} after session start: {chat.fail_detail(event, arg)!r}")

    def _on_message(self, msg):
        if msg["type"] != "error":  # errors are in self.errors (also without a body)
            self.inbox.put_nowait(msg)

    def _on_message_error(self, msg):
        self._on_error(msg)

    def _on_error(self, stanza):
        step(f"{self.name}: received {stanza.name} error from {stanza['from']}: "
             f"{describe_error(stanza)}")
        self.errors.append(stanza)
        self.presence_event.set()

    def _on_presence(self, pres):
        if pres["type"] == "error":
            self._on_error(pres)
            return
        self.presences.append((time.monotonic(), pres))
        self.presence_event.set()

    async def wait_presence(self, pred, what, timeout, since=0.0, watch=()):
        """The first presence received after `since` that satisfies pred.

        An error stanza received by this client or by one in watch (the
        sender, who gets the bounces) fails at once."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            check_errors((self,) + tuple(watch), what)
            for t, p in self.presences[seen:]:
                seen += 1
                if t >= since and pred(p):
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                got = [f"{p['from']} type={p['type'] or 'available'}" for _, p in self.presences]
                raise Failure(f"{self.name}: no {what} within {timeout:.0f}s "
                              f"(presences received: {got or 'none'})")
            self.presence_event.clear()
            try:
                await asyncio.wait_for(self.presence_event.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass


def check_errors(clients, what):
    """Fail if any of clients has received an error stanza."""
    for c in clients:
        if c.errors:
            e = c.errors[0]
            raise Failure(f"{c.name}: {e.name} error from {e['from']} while waiting for {what}: "
                          f"{describe_error(e)}: {e}")


async def expect_message(client, sender, body, timeout):
    """Wait for one chat message from sender's bare JID with exactly body.

    An error stanza received by either (the sender gets the bounce) fails."""
    from_bare = sender.boundjid.bare
    deadline = time.monotonic() + timeout
    while True:
        check_errors((client, sender), f"message to {client.name}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"{client.name}: no message {body!r} from {from_bare} within {timeout:.0f}s")
        try:
            msg = await asyncio.wait_for(client.inbox.get(), min(left, 0.2))
        except asyncio.TimeoutError:
            continue
        chat.check_chat(client, msg, from_bare, body)
        return msg


async def roster_item(client, other_bare, timeout):
    """The server's roster item for other_bare, fetched again until it says
    'both' with no pending ask or until timeout; returns (subscription, ask)."""
    deadline = time.monotonic() + timeout
    while True:
        # A plain roster get, without the version slixmpp would add (the
        # answer to a versioned get may be empty, RFC 6121 §2.6).
        iq = client.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        iq = await iq.send(timeout=timeout)
        items = iq["roster"]["items"]
        item = items.get(slixmpp.JID(other_bare))
        if item is None:
            for k, v in items.items():
                if slixmpp.JID(k).bare == other_bare:
                    item = v
        sub = item["subscription"] if item is not None else None
        ask = (item.get("ask") or None) if item is not None else None
        if sub == "both" and not ask:
            return sub, ask
        if time.monotonic() >= deadline:
            return sub, ask
        await asyncio.sleep(0.5)


async def run(args):
    a = Client("A", args.jid_a, os.environ["XMPP_PASSWORD_A"], args.addr_a, args.port_a,
               args.mech_a, args.ca_file)
    b = Client("B", args.jid_b, os.environ["XMPP_PASSWORD_B"], args.addr_b, args.port_b,
               args.mech_b, args.ca_file)
    clients = (a, b)
    T = args.step_timeout
    try:
        await chat.start_sessions(clients, T, args.ca_file, log=step)

        for c in clients:
            await c.get_roster(timeout=T)
            c.send_presence()
            rtt = await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain), timeout=T)
            step(f"{c.name}: roster fetched, initial presence sent "
                 f"(own server answered a ping in {rtt * 1000:.1f} ms)")

        a_bare, b_bare = a.boundjid.bare, b.boundjid.bare
        tag = f"{os.getpid()}-{LABEL}"
        # --- messages both ways --------------------------------------------
        body_ab = f"hello {b_bare} from {a_bare}: ünïcödé & <xml/> {tag}"
        t0 = time.monotonic()
        a.send_message(mto=slixmpp.JID(b_bare), mbody=body_ab, mtype="chat")
        step(f"A: sent chat to {b_bare}: {body_ab!r}")
        msg = await expect_message(b, a, body_ab, T)
        step(f"B: received from {msg['from']} (exact body) after {time.monotonic() - t0:.2f}s")

        body_ba = f"hi {a_bare}, {b_bare} here — reply {tag}"
        t0 = time.monotonic()
        b.send_message(mto=slixmpp.JID(a_bare), mbody=body_ba, mtype="chat")
        step(f"B: sent chat to {a_bare}: {body_ba!r}")
        msg = await expect_message(a, b, body_ba, T)
        step(f"A: received from {msg['from']} (exact body) after {time.monotonic() - t0:.2f}s")

        # --- mutual subscription -------------------------------------------
        def typed(ptype, from_bare):
            return lambda p: p["type"] == ptype and p["from"].bare == from_bare

        def available(from_bare):
            return lambda p: p["type"] in ("", "available") and p["from"].bare == from_bare

        async def send_presence(sender, ptype, receiver):
            """sender sends receiver a presence of ptype, which must arrive."""
            s_bare, r_bare = sender.boundjid.bare, receiver.boundjid.bare
            sender.send_presence(pto=r_bare, ptype=ptype)
            step(f"{sender.name}: sent {ptype} to {r_bare}")
            await receiver.wait_presence(typed(ptype, s_bare), f"{ptype} from {s_bare}", T,
                                         watch=(sender,))
            step(f"{receiver.name}: received {ptype} from {s_bare}")

        t_a_sub = time.monotonic()
        await send_presence(a, "subscribe", b)
        await send_presence(b, "subscribed", a)
        t_b_sub = time.monotonic()
        await send_presence(b, "subscribe", a)
        await send_presence(a, "subscribed", b)

        # --- end state -----------------------------------------------------
        for c, other in ((a, b_bare), (b, a_bare)):
            sub, ask = await roster_item(c, other, T)
            if sub != "both" or ask:
                raise Failure(f"{c.name}: roster item for {other} has subscription={sub!r} "
                              f"ask={ask!r} after {T:.0f}s, want 'both' and no ask")
            step(f"{c.name}: server roster has {other} with subscription 'both', no pending ask")
        for c, o, since in ((a, b, t_a_sub), (b, a, t_b_sub)):
            other = o.boundjid.bare
            p = await c.wait_presence(available(other), f"available presence from {other}", T,
                                      since=since, watch=(o,))
            step(f"{c.name}: received available presence from {p['from']}")
    finally:
        await chat.close_all(clients)
    step("both clients disconnected")


def main():
    global LABEL
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for s in ("a", "b"):
        p.add_argument(f"--jid-{s}", required=True)
        p.add_argument(f"--addr-{s}", required=True, help="c2s (STARTTLS) address of its server")
        p.add_argument(f"--port-{s}", type=int, required=True)
        p.add_argument(f"--mech-{s}", default=None,
                       help="the only SASL mechanism to use (default: slixmpp's own choice)")
    p.add_argument("--ca-file", required=True, help="PEM CA certificate(s) to trust")
    p.add_argument("--label", default="")
    p.add_argument("--step-timeout", type=float, default=20)
    p.add_argument("--timeout", type=float, default=120, help="for the whole run")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    args = p.parse_args()
    LABEL = args.label
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(asctime)s %(levelname)-8s %(name)s: %(message)s", stream=sys.stderr)
    step(f"slixmpp {slixmpp.__version__}, Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")

    async def bounded():
        await asyncio.wait_for(run(args), args.timeout)

    try:
        asyncio.run(bounded())
    except Failure as e:
        print(f"FAIL [{LABEL}]: {e}", flush=True)
        return 1
    except asyncio.TimeoutError:
        print(f"FAIL [{LABEL}]: timed out after {args.timeout:.0f}s in total; last step: {LAST_STEP}",
              flush=True)
        return 1
    except Exception as e:  # an unexpected error is still a failure with a message
        print(f"FAIL [{LABEL}]: {type(e).__name__}: {e} (last step: {LAST_STEP})", flush=True)
        return 1
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
