#!/usr/bin/python3
"""bob's side of scripts/interop/conversejs.sh: a slixmpp client that
answers the Converse.js user and downloads the file it sends.

Run with Debian's /usr/bin/python3 (python3-slixmpp) while Converse.js, in
Chromium, is logged in as alice (conversejs.mjs). bob logs in over STARTTLS
(certificate verified against --ca-file, slixmpp's default SASL settings,
like slixmpp_chat.py), sends presence, prints "READY" and then:

  1. waits for a chat message from alice's bare JID with exactly --body and
     answers it with --reply (to the full JID it came from);
  2. waits for alice's next message with a body: Converse's file message,
     whose body is the upload's GET URL and which carries the same URL as
     XEP-0066 out-of-band data; both must be there and agree;
  3. downloads the URL over HTTPS (the name in the URL is the test domain:
     connected to 127.0.0.1, certificate verified for that name), and checks
     the status, the Content-Length and that the bytes' SHA-256 is --sha256.

Passwords come from the environment (XMPP_PASSWORD_B). Exit 0 only if all
went right; "FAIL: ..." otherwise.
"""

import argparse
import asyncio
import hashlib
import http.client
import os
import socket
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slixmpp  # noqa: E402

import slixmpp_chat as chat  # noqa: E402  (same directory)
from slixmpp_chat import Failure, step  # noqa: E402

OOB = "jabber:x:oob"


async def next_body(client, from_bare, timeout, what):
    """The next message with a body from from_bare (chat states, receipts
    and markers without a body are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise Failure(f"{client.name}: no {what} from {from_bare} within {timeout:g}s")
        try:
            msg = await asyncio.wait_for(client.inbox.get(), left)
        except asyncio.TimeoutError:
            continue
        if msg["type"] == "error":
            raise Failure(f"{client.name}: message error from {msg['from']}: "
                          f"{msg['error']['condition']} {msg['error']['text']}")
        if msg["body"] == "":
            continue
        if msg["from"].bare != from_bare:
            raise Failure(f"{client.name}: message from {msg['from']}, want {from_bare}: {msg}")
        return msg


def download(url, ca_file, timeout):
    """GET url over HTTPS from 127.0.0.1 (the URL's host need not resolve),
    verifying the certificate for the URL's host; returns (response, body)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "https":
        raise Failure(f"upload URL {url!r} is not https")
    ctx = ssl.create_default_context(cafile=ca_file)
    conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout, context=ctx)
    raw = socket.create_connection(("127.0.0.1", u.port or 443), timeout=timeout)
    conn.sock = ctx.wrap_socket(raw, server_hostname=u.hostname)
    path = u.path + ("?" + u.query if u.query else "")
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


async def run(args, clients):
    b = chat.Client("B", args.jid, os.environ["XMPP_PASSWORD_B"], args.port, args.ca_file)
    clients.append(b)
    # alice's full JIDs seen available, and the first of them to go offline.
    alice_online = set()
    alice_gone = asyncio.get_running_loop().create_future()

    def on_available(pres):
        if pres["from"].bare == args.peer:
            alice_online.add(pres["from"].full)

    def on_unavailable(pres):
        if pres["from"].full in alice_online and not alice_gone.done():
            alice_gone.set_result(pres["from"].full)

    b.add_event_handler("presence_available", on_available)
    b.add_event_handler("presence_unavailable", on_unavailable)
    await chat.start_sessions([b], args.step_timeout, args.ca_file)
    b.send_presence()
    rtt = await b["xep_0199"].ping(jid=slixmpp.JID(b.boundjid.domain), timeout=args.step_timeout)
    step(f"B: presence sent (server ping answered in {rtt * 1000:.1f} ms)")
    step("READY")

    msg = await next_body(b, args.peer, args.wait, "message")
    if msg["body"] != args.body:
        raise Failure(f"B: body {msg['body']!r}, want {args.body!r}")
    step(f"B: received from {msg['from']} ({msg['type']}): {msg['body']!r} (exact match)")
    b.send_message(mto=msg["from"], mbody=args.reply, mtype="chat")
    step(f"B: replied to {msg['from']}: {args.reply!r}")

    msg = await next_body(b, args.peer, args.wait, "file message")
    oob = msg.xml.find(f"{{{OOB}}}x/{{{OOB}}}url")
    if oob is None or not (oob.text or "").strip():
        raise Failure(f"B: the file message has no XEP-0066 <x xmlns='{OOB}'><url/>: {msg}")
    url = oob.text.strip()
    if msg["body"].strip() != url:
        raise Failure(f"B: the file message's body {msg['body']!r} is not its OOB URL {url!r}")
    step(f"B: received a file message from {msg['from']}: OOB URL = body = {url}")

    resp, data = await asyncio.get_running_loop().run_in_executor(
        None, download, url, args.ca_file, args.step_timeout)
    if resp.status != 200:
        raise Failure(f"B: GET {url}: HTTP {resp.status}: {data[:200]!r}")
    got = hashlib.sha256(data).hexdigest()
    step(f"B: GET {url.split('?')[0]}: HTTP {resp.status}, {len(data)} bytes, "
         f"Content-Type {resp.getheader('Content-Type')}, sha256 {got}")
    if resp.getheader("Content-Length") != str(len(data)):
        raise Failure(f"B: Content-Length {resp.getheader('Content-Length')}, got {len(data)} bytes")
    if got != args.sha256:
        raise Failure(f"B: downloaded file's sha256 {got}, uploaded {args.sha256}")
    step("B: the downloaded bytes are the uploaded file's (sha256 equal)")

    sender = msg["from"].full
    if sender not in alice_online:
        raise Failure(f"B: no available presence from {sender} (alice's Converse) was received")
    try:
        gone = await asyncio.wait_for(asyncio.shield(alice_gone), args.wait)
    except asyncio.TimeoutError:
        raise Failure(f"B: {sender} did not go offline within {args.wait:g}s (Converse's logout)")
    step(f"B: {gone} went offline (unavailable presence: Converse logged out)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True, help="c2s (STARTTLS) port on 127.0.0.1")
    p.add_argument("--jid", required=True, help="bob's full JID")
    p.add_argument("--peer", required=True, help="alice's bare JID (the Converse.js user)")
    p.add_argument("--ca-file", required=True, help="PEM certificate(s) to trust")
    p.add_argument("--body", required=True, help="the message alice sends")
    p.add_argument("--reply", required=True, help="bob's answer")
    p.add_argument("--sha256", required=True, help="hex SHA-256 of the file alice uploads")
    p.add_argument("--step-timeout", type=float, default=15)
    p.add_argument("--wait", type=float, default=120, help="for each of alice's messages")
    p.add_argument("--timeout", type=float, default=200, help="for the whole run")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log (XML) to stderr")
    args = p.parse_args()
    return chat.run_scenario(run, args, 4)


if __name__ == "__main__":
    sys.exit(main())
