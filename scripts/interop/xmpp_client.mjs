// Two @xmpp/client (npm) clients log in to xmppd with the library's default
// settings and chat; exit 0 only if all went right.
//
// Run by scripts/interop/xmpp-client.sh with `node --experimental-websocket`
// (Node 20 has no global WebSocket; @xmpp/client imports its websocket
// transport even when it connects over TCP). The package is loaded from
// $XMPP_NODE_MODULES (an npm --prefix outside the tree). Each client
// connects to xmpp://127.0.0.1:PORT (TCP, STARTTLS) with username, password
// and domain only; the server certificate must verify against
// NODE_EXTRA_CA_CERTS for the domain. Passwords come from the environment
// (XMPP_PASSWORD_A, XMPP_PASSWORD_B).
import path from "node:path";
import { pathToFileURL } from "node:url";

const [port, domain] = process.argv.slice(2);
const modules = process.env.XMPP_NODE_MODULES;
const { client, xml } = await import(
  pathToFileURL(path.join(modules, "@xmpp/client/index.js")).href
);

const start = Date.now();
const step = (msg) =>
  console.log(`[@xmpp/client ${((Date.now() - start) / 1000).toFixed(2)}s] ${msg}`);
const fail = (msg) => {
  console.log(`FAIL: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail("timed out after 40s"), 40000).unref();

function make(name, username, password) {
  const c = client({ service: `xmpp://127.0.0.1:${port}`, domain, username, password });
  c.name = name;
  c.inbox = [];
  c.waiters = [];
  c.on("error", (err) => fail(`${name}: error: ${err.condition || ""} ${err.message}`));
  c.on("stanza", (st) => {
    if (!st.is("message")) return;
    c.inbox.push(st);
    c.waiters.splice(0).forEach((w) => w());
  });
  return c;
}

async function online(c) {
  const addr = await c.start();
  const sock = c.socket && c.socket.socket; // @xmpp/tls wraps the tls.TLSSocket
  const tlsv = sock && typeof sock.getProtocol === "function" ? sock.getProtocol() : null;
  const authorized = sock ? sock.authorized : undefined;
  if (!tlsv) fail(`${c.name}: the socket is not TLS after login`);
  if (authorized !== true) fail(`${c.name}: server certificate not verified`);
  step(`${c.name}: online as ${addr}: ${tlsv}, certificate verified`);
  await c.send(xml("presence"));
  // A round trip after the presence: the server has read it when the ping is answered.
  await c.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: "urn:xmpp:ping" })), 15000);
  return addr;
}

async function expect(c, from, body) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const i = c.inbox.findIndex((m) => m.getChildText("body") !== null);
    if (i >= 0) {
      const m = c.inbox.splice(i, 1)[0];
      if (m.attrs.type === "error") fail(`${c.name}: message error: ${m.toString()}`);
      if (m.attrs.from.split("/")[0] !== from) fail(`${c.name}: message from ${m.attrs.from}, want ${from}`);
      if (m.getChildText("body") !== body) fail(`${c.name}: body ${JSON.stringify(m.getChildText("body"))}, want ${JSON.stringify(body)}`);
      step(`${c.name}: received from ${m.attrs.from}: ${JSON.stringify(body)} (exact match)`);
      return m;
    }
    const left = deadline - Date.now();
    if (left <= 0) fail(`${c.name}: no message from ${from} within 15s`);
    await new Promise((r) => {
      c.waiters.push(r);
      setTimeout(r, left);
    });
  }
}

const a = make("A", "alice", process.env.XMPP_PASSWORD_A);
const b = make("B", "bob", process.env.XMPP_PASSWORD_B);
const addrA = await online(a);
const addrB = await online(b);

const bodyAB = `hello B from A, ünïcödé & <xml> ${process.pid}`;
await a.send(xml("message", { to: addrB.bare().toString(), type: "chat" }, xml("body", {}, bodyAB)));
step(`A: sent chat to ${addrB.bare()}`);
const m = await expect(b, addrA.bare().toString(), bodyAB);

const bodyBA = `hi A, B here — reply to ${process.pid}`;
await b.send(xml("message", { to: m.attrs.from, type: "chat" }, xml("body", {}, bodyBA)));
step(`B: replied to ${m.attrs.from}`);
await expect(a, addrB.bare().toString(), bodyBA);

await a.stop();
await b.stop();
step("both clients disconnected; OK");
process.exit(0);
