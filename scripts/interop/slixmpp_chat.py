#!/usr/bin/python3
"""Two slixmpp clients log in to xmppd and chat; exit 0 only if all went right.

Run by scripts/interop/slixmpp.sh with Debian's /usr/bin/python3 (the first
python3 on PATH may lack Debian's python3-slixmpp). Each client connects to
127.0.0.1:PORT, must negotiate STARTTLS with a certificate that verifies
against --ca-file for the JID's domain, and authenticates with slixmpp's
default SASL settings (its own choice and order of mechanisms, channel
binding as it likes; issue 7 point 1). Then both send presence, A sends a chat
message to B's bare JID, B answers A, and each checks the exact body and the
sender's bare JID that the server stamped.

Passwords come from the environment (XMPP_PASSWORD_A, XMPP_PASSWORD_B) so that
they do not show in the process list.
"""

import argparse
import asyncio
import logging
import os
import ssl
import sys
import time

import slixmpp

START = time.monotonic()
LAST_STEP = "start"


def step(msg):
    global LAST_STEP
    LAST_STEP = msg
    print(f"[slixmpp {time.monotonic() - START:6.2f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def fail_detail(event, arg):
    """What to say of the argument of a failure event of Client._make_fail."""
    if event == "stream_error" and arg is not None:
        return f"{arg['condition']} {arg['text']}"
    if event in ("failed_auth", "failed_all_auth") and arg is not None:
        try:
            return f"{arg['condition']} {arg['text']}"
        except Exception:
            pass
    return arg


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP pinned to one address and one CA file; with mech, also
    to one SASL mechanism (federation.py), else slixmpp's defaults."""

    def __init__(self, name, jid, password, port, ca_file, addr="127.0.0.1", mech=None):
        super().__init__(jid, password, sasl_mech=mech)
        self.name = name
        self.addr = addr
        self.port = port
        self.mech = mech
        # Verify the server certificate against the generated self-signed
        # certificate, for the JID's domain (slixmpp passes the JID's domain
        # as server_hostname). No system CAs: only this file is trusted.
        self.ca_certs = ca_file
        self.ssl_context = ssl.create_default_context(cafile=ca_file)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        if mech is not None:
            # slixmpp offers SCRAM channel binding (tls-unique) whenever the
            # socket is TLS; on a non-PLUS mechanism it then sends the gs2
            # flag "y", which a server that offers -PLUS must refuse (RFC 5802
            # §6, downgrade protection). A caller that pins one non-PLUS
            # mechanism does not want channel binding: say so ("n").
            mechs = self["feature_mechanisms"]
            default_cb = mechs.sasl_callback

            def credentials(required, optional):
                creds = default_cb(required, optional)
                if "channel_binding" in creds:
                    creds["channel_binding"] = None
                return creds

            mechs.sasl_callback = credentials
        self.register_plugin("xep_0199", {"keepalive": False})
        self.whitespace_keepalive = False

        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.inbox = asyncio.Queue()
        self.offered_mechs = None
        self.tls_done = False

        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("message_error", self._on_message_error)
        self.add_event_handler("tls_success", self._on_tls)
        # With its defaults slixmpp tries its mechanisms in turn: failed_auth
        # is one refused attempt, failed_all_auth the end. Pinned to one
        # mechanism, the first refusal is the end.
        fatal = ["failed_all_auth", "no_auth", "ssl_invalid_chain",
                 "connection_failed", "stream_error", "disconnected"]
        if mech is not None:
            fatal.append("failed_auth")
        else:
            self.failed_attempts = []
            self.add_event_handler("failed_auth", self._on_failed_attempt)
        for ev in fatal:
            self.add_event_handler(ev, self._make_fail(ev))

    # Never ask a resolver: the test domain need not exist in DNS; every
    # connection goes to addr:port (127.0.0.1 unless told).
    async def get_dns_records(self, domain, port=None):
        return [(domain, self.addr, self.port)]

    def _make_fail(self, event):
        def handler(arg=None):
            if not self.started.done():
                self.started.set_exception(Failure(
                    f"{self.name}: {event} before session start: {fail_detail(event, arg)!r}"))
            else:
                self._after_start(event, arg)
        return handler

    def _after_start(self, event, arg):
        """One of the failure events of _make_fail after the session started."""
        if event != "disconnected" and self.started.exception() is None:
            step(f"{self.name}: {event} after session start: {arg!r}")

    def _on_failed_attempt(self, arg=None):
        """One refused SASL attempt while slixmpp goes through its defaults."""
        mech = self["feature_mechanisms"].mech
        self.failed_attempts.append(
            f"{mech.name if mech is not None else '?'}: {fail_detail('failed_auth', arg)}")

    def _on_tls(self, _):
        self.tls_done = True

    def _on_start(self, _):
        if not self.started.done():
            self.started.set_result(True)

    def _on_message(self, msg):
        self.inbox.put_nowait(msg)

    def _on_message_error(self, msg):
        self.inbox.put_nowait(msg)

    def check_security(self):
        """Raise unless TLS is up, verified, and SASL done (with self.mech
        if pinned)."""
        mech = self["feature_mechanisms"].mech
        used = mech.name if mech is not None else None
        if used is None or (self.mech is not None and used != self.mech):
            raise Failure(f"{self.name}: SASL mechanism used was {used!r}, want {self.mech}")
        if not self.tls_done or "starttls" not in self.features:
            raise Failure(f"{self.name}: STARTTLS was not negotiated "
                          f"(tls_success={self.tls_done}, features={sorted(self.features)})")
        sslobj = self.transport.get_extra_info("ssl_object") if self.transport else None
        if sslobj is None:
            raise Failure(f"{self.name}: the transport is not TLS")
        ctx = sslobj.context
        if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
            raise Failure(f"{self.name}: certificate was not verified")
        if "mechanisms" not in self.features:
            raise Failure(f"{self.name}: SASL not negotiated (features={sorted(self.features)})")
        return used, sslobj.version(), sslobj.cipher()[0]


async def expect_message(client, body, from_bare, timeout):
    """Wait for one chat message from from_bare with exactly body."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"{client.name}: no message {body!r} from {from_bare} within {timeout}s")
        try:
            msg = await asyncio.wait_for(client.inbox.get(), left)
        except asyncio.TimeoutError:
            continue
        if msg["type"] == "error":
            raise Failure(f"{client.name}: got a message error from {msg['from']}: "
                          f"{msg['error']['condition']} {msg['error']['text']}")
        check_chat(client, msg, from_bare, body)
        return msg


def check_chat(client, msg, from_bare, body):
    """Raise unless msg, received by client, is a chat message from the bare
    JID from_bare with exactly body."""
    if msg["from"].bare != from_bare:
        raise Failure(f"{client.name}: message from {msg['from']}, want {from_bare}: {msg}")
    if msg["body"] != body:
        raise Failure(f"{client.name}: body {msg['body']!r}, want {body!r}")
    if msg["type"] not in ("chat", "normal"):
        raise Failure(f"{client.name}: message type {msg['type']!r}, want chat")


async def start_sessions(clients, timeout, ca_file, log=None):
    """Connect each client to its address and wait for its session; fail
    unless each starts within timeout seconds and passes check_security.
    One line per step through log (default: step)."""
    log = log or step
    for c in clients:
        log(f"{c.name}: connecting as {c.boundjid.bare} to {c.addr}:{c.port} "
            f"(STARTTLS required, SASL {c.mech or 'defaults'}, CA {ca_file})")
        c.connect(address=(c.addr, c.port), force_starttls=True,
                  disable_starttls=False, use_ssl=False)
    for c in clients:
        try:
            await asyncio.wait_for(asyncio.shield(c.started), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{c.name}: no session within {timeout:g}s "
                          f"(TLS done: {c.tls_done}, features: {sorted(c.features)})")
        used, version, cipher = c.check_security()
        refused = getattr(c, "failed_attempts", None)
        if refused:
            log(f"{c.name}: SASL attempts refused before {used}: {'; '.join(refused)}")
        log(f"{c.name}: session started as {c.boundjid.full}: {version} {cipher}, "
            f"certificate verified, SASL {used}")


async def close_all(clients):
    """Disconnect each client (abort it if that takes over 5 s); a client's
    closing attribute is True from then on."""
    for c in clients:
        c.closing = True
        try:
            await asyncio.wait_for(c.disconnect(wait=2.0), 5)
        except Exception:
            c.abort()
        if c.started.done() and not c.started.cancelled():
            c.started.exception()  # retrieved: no "never retrieved" noise


# --- Numbered-step scenarios (slixmpp_im.py, slixmpp_sm.py) -------------------
SECTION = "0"


def section(n, title):
    """Start step n of a numbered scenario: fail() names it."""
    global SECTION
    SECTION = n
    step(f"== step {n}: {title}")


def fail(msg):
    raise Failure(f"step {SECTION}: {msg}")


def xml(stanza):
    return str(stanza).replace("\n", "")


def scenario_args(description, timeout):
    """An argument parser with the options every scenario takes from
    lib.bash's interop_run_clients; the caller adds its own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, required=True, help="c2s (STARTTLS) port on 127.0.0.1")
    p.add_argument("--jid-a", required=True, help="full JID")
    p.add_argument("--jid-b", required=True, help="full JID")
    p.add_argument("--ca-file", required=True, help="PEM certificate(s) to trust")
    p.add_argument("--step-timeout", type=float, default=10)
    p.add_argument("--timeout", type=float, default=timeout, help="for the whole run")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    return p


def run_scenario(run, args, steps):
    """Run the coroutine function run(args, clients) within args.timeout,
    disconnect the clients it left in clients, and print the outcome: "OK:
    all N steps passed" (returns 0) or "FAIL: step N: ..." (returns 1)."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(asctime)s %(levelname)-8s %(name)s: %(message)s",
                        stream=sys.stderr)
    step(f"slixmpp {slixmpp.__version__}, Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    clients = []

    async def bounded():
        try:
            await asyncio.wait_for(run(args, clients), args.timeout)
        finally:
            await close_all(clients)

    try:
        asyncio.run(bounded())
    except Failure as e:
        msg = str(e)
        if not msg.startswith("step "):
            msg = f"step {SECTION}: {msg}"
        print(f"FAIL: {msg}", flush=True)
        return 1
    except asyncio.TimeoutError:
        print(f"FAIL: step {SECTION}: timed out after {args.timeout}s in total; "
              f"last step: {LAST_STEP}", flush=True)
        return 1
    except Exception as e:  # an unexpected error is still a failure with a message
        print(f"FAIL: step {SECTION}: {type(e).__name__}: {e}", flush=True)
        return 1
    step(f"OK: all {steps} steps passed")
    return 0


async def run(args):
    a = Client("A", args.jid_a, os.environ["XMPP_PASSWORD_A"], args.port, args.ca_file)
    b = Client("B", args.jid_b, os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    clients = (a, b)
    try:
        await start_sessions(clients, args.step_timeout, args.ca_file)

        for c in clients:
            c.send_presence()
            # A ping answered by the server proves it has read the presence
            # sent before it on the same stream.
            rtt = await c["xep_0199"].ping(jid=slixmpp.JID(c.boundjid.domain),
                                           timeout=args.step_timeout)
            step(f"{c.name}: presence sent (server ping answered in {rtt * 1000:.1f} ms)")

        body_ab = f"hello B from A, ünïcödé & <xml> {os.getpid()}"
        a.send_message(mto=slixmpp.JID(b.boundjid.bare), mbody=body_ab, mtype="chat")
        step(f"A: sent chat to bare {b.boundjid.bare}: {body_ab!r}")
        msg = await expect_message(b, body_ab, a.boundjid.bare, args.step_timeout)
        step(f"B: received from {msg['from']}: {msg['body']!r} (exact match)")

        body_ba = f"hi A, B here — reply to {os.getpid()}"
        b.send_message(mto=msg["from"], mbody=body_ba, mtype="chat")
        step(f"B: replied to {msg['from']}: {body_ba!r}")
        msg = await expect_message(a, body_ba, b.boundjid.bare, args.step_timeout)
        step(f"A: received from {msg['from']}: {msg['body']!r} (exact match)")
    finally:
        await close_all(clients)
    step("both clients disconnected")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="c2s (STARTTLS) port on 127.0.0.1")
    p.add_argument("--jid-a", required=True)
    p.add_argument("--jid-b", required=True)
    p.add_argument("--ca-file", required=True, help="PEM certificate(s) to trust")
    p.add_argument("--step-timeout", type=float, default=15)
    p.add_argument("--timeout", type=float, default=45, help="for the whole run")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)-8s %(name)s: %(message)s", stream=sys.stderr)
    step(f"slixmpp {slixmpp.__version__}, Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")

    async def bounded():
        await asyncio.wait_for(run(args), args.timeout)

    try:
        asyncio.run(bounded())
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    except asyncio.TimeoutError:
        print(f"FAIL: timed out after {args.timeout}s in total; last step: {LAST_STEP}", flush=True)
        return 1
    except Exception as e:  # an unexpected error is still a failure with a message
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        return 1
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
