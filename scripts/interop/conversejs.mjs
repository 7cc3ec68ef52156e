// Converse.js (the full web client, from the npm registry) in Debian's
// Chromium, headless, driven with playwright-core: log in to xmppd as alice
// over WebSocket, chat with bob (a slixmpp client, slixmpp_conversejs.py)
// and send him a file with HTTP File Upload; exit 0 only if all went right.
//
// Run by scripts/interop/conversejs.sh with Debian's node. This script
//   - serves the page (index.html and Converse's dist/ at /dist/) on
//     http://127.0.0.1:PORT with node's http module: a secure context
//     (loopback), another origin than xmppd's web listener, as when a site
//     embeds Converse; Converse gets only websocket_url, the rest are its
//     defaults;
//   - launches /usr/bin/chromium (no Playwright browser download), which
//     resolves the test domain and its subdomains to 127.0.0.1 and no
//     other name (--host-resolver-rules) and trusts exactly the key of
//     xmppd's generated certificate (--ignore-certificate-errors-spki-list):
//     the browser's equivalent of the slixmpp scripts' --ca-file;
//   - logs in through Converse's login form as a user would, waits until
//     the roster shows bob online, opens his chat, sends a message and
//     waits for bob's reply in the chat view; then picks the file with the
//     toolbar's paperclip button (the file chooser sets Converse's
//     <input type=file class=fileupload>) and waits until alice's message
//     shows it as an image of the file's width and height, loaded from
//     xmppd; then logs out (profile, Log out, Confirm) and waits for the
//     WebSocket to close;
//   - saves a screenshot of the chat (PNG) at the given path before logging
//     out, and one of the page (plus its HTML) next to it on failure;
//   - prints each error stanza xmppd sent Converse (every WebSocket frame
//     goes to stderr, which conversejs.sh shows on failure).
//
// Arguments: MODULES_DIR DOMAIN WEBSOCKET_URL CERT_FILE UPLOAD_FILE
// SCREENSHOT_PNG. Environment: XMPP_PASSWORD_A (alice's), CONVERSE_BODY
// (the message to send), CONVERSE_REPLY (bob's expected answer).
import { createServer } from "node:http";
import { createHash, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, domain, wsURL, certFile, uploadFile, shot] = process.argv.slice(2);
const password = process.env.XMPP_PASSWORD_A;
const body = process.env.CONVERSE_BODY;
const reply = process.env.CONVERSE_REPLY;
if (!shot || !password || !body || !reply) {
  console.log("FAIL: usage: conversejs.mjs MODULES DOMAIN WS_URL CERT FILE PNG (and the environment)");
  process.exit(2);
}
const dist = path.join(modules, "converse.js", "dist");
const { chromium } = await import(pathToFileURL(path.join(modules, "playwright-core", "index.mjs")).href);

const start = Date.now();
const step = (msg) => console.log(`[converse ${((Date.now() - start) / 1000).toFixed(2)}s] ${msg}`);
const STEP_MS = 30000; // one UI step; the whole run is bounded by the caller's timeout too

// --- the page -----------------------------------------------------------------
// As in Converse's quickstart, self-hosted: dist/ served at /dist/ (its
// default assets_path), websocket_url the only setting.
const page = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>xmppd interop: Converse.js</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script>
</head>
<body>
<script type="module">
converse.initialize({ websocket_url: ${JSON.stringify(wsURL)} });
</script>
</body>
</html>
`;
const types = {
  ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json",
  ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
  ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
  ".map": "application/json",
};
const web = createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/" || url.pathname === "/index.html") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(page);
    return;
  }
  const rel = decodeURIComponent(url.pathname).replace(/^\/dist\//, "");
  const file = path.join(dist, rel);
  if (!url.pathname.startsWith("/dist/") || !file.startsWith(dist + path.sep)) {
    console.error(`page server: 404 ${url.pathname}`);
    res.writeHead(404).end("not found");
    return;
  }
  try {
    const data = await readFile(file);
    res.writeHead(200, { "Content-Type": types[path.extname(file)] || "application/octet-stream" });
    res.end(data);
  } catch {
    console.error(`page server: 404 ${url.pathname}`);
    res.writeHead(404).end("not found");
  }
});
await new Promise((ok) => web.listen(0, "127.0.0.1", ok));
const pageURL = `http://127.0.0.1:${web.address().port}/`;
step(`serving the page at ${pageURL} (Converse dist from ${dist})`);

// --- the browser ----------------------------------------------------------------
const cert = new X509Certificate(await readFile(certFile));
const spki = createHash("sha256").update(cert.publicKey.export({ type: "spki", format: "der" })).digest("base64");
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  timeout: 60000,
  args: [
    // The test domain and its subdomains are 127.0.0.1; every other name
    // is unknown (the login page's sponsor logos from conversejs.org fail
    // at once instead of waiting on DNS): loopback only.
    `--host-resolver-rules=MAP ${domain} 127.0.0.1, MAP *.${domain} 127.0.0.1, EXCLUDE 127.0.0.1, MAP * ~NOTFOUND`,
    `--ignore-certificate-errors-spki-list=${spki}`,
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
step(`launched Chromium ${browser.version()} headless (trusting the key of ${certFile}, sha256/${spki})`);
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const tab = await ctx.newPage();
tab.setDefaultTimeout(STEP_MS);
tab.on("console", (m) => console.error(`browser console ${m.type()}: ${m.text()}`));
tab.on("pageerror", (e) => console.error(`browser page error: ${e.message}`));
tab.on("requestfailed", (r) => console.error(`browser request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
// Every WebSocket frame goes to stderr (the script shows it on failure);
// each error stanza xmppd sends Converse is also a line on stdout.
let errors = 0;
const wsClosed = [];
tab.on("websocket", (ws) => {
  step(`browser opened a WebSocket to ${ws.url()}`);
  ws.on("framesent", (f) => console.error(`ws > ${f.payload}`));
  ws.on("framereceived", (f) => {
    console.error(`ws < ${f.payload}`);
    if (/^<(iq|message|presence)\b[^>]*\btype=["']error["']/.test(String(f.payload))) {
      errors++;
      step(`xmppd sent Converse an error: ${String(f.payload).slice(0, 400)}`);
    }
  });
  ws.on("close", () => {
    step(`browser's WebSocket to ${ws.url()} closed`);
    wsClosed.splice(0).forEach((ok) => ok());
  });
});
tab.on("response", (r) => {
  const u = new URL(r.url());
  if (u.hostname.endsWith(domain)) step(`browser: ${r.request().method()} ${u.origin}${u.pathname} -> ${r.status()}`);
});

async function fail(msg) {
  console.log(`FAIL: ${msg}`);
  try {
    const base = shot.replace(/\.png$/, "");
    await tab.screenshot({ path: `${base}-failure.png`, timeout: 10000 });
    await writeFile(`${base}-failure.html`, await tab.content());
    console.log(`FAIL: page at failure: ${base}-failure.png, ${base}-failure.html`);
  } catch (e) {
    console.log(`(no failure screenshot: ${e.message})`);
  }
  await browser.close().catch(() => {});
  process.exit(1);
}

async function run() {
  const alice = `alice@${domain}`;
  const bob = `bob@${domain}`;
  await tab.goto(pageURL);
  const jidInput = tab.locator("#converse-login-jid");
  await jidInput.waitFor();
  step("Converse shows its login form");
  await jidInput.fill(alice);
  await tab.locator("#converse-login-password").fill(password);
  await tab.locator("converse-login-form button[type=submit], form.converse-form button[type=submit]").first().click();
  step(`submitted the login form as ${alice}`);

  const contact = tab.locator(`a.open-chat[data-jid="${bob}"]`);
  await contact.waitFor();
  step(`logged in: ${bob} is in the roster`);
  // bob is online (his presence, the server's answer to Converse's
  // initial presence): the roster shows his status.
  const status = contact.locator("converse-icon.chat-status--avatar");
  try {
    await tab.waitForFunction((el) => el.getAttribute("title") === "This contact is online", await status.elementHandle(), { timeout: 10000 });
  } catch {
    throw new Error(`the roster shows bob as ${await status.getAttribute("title")}, not "This contact is online"`);
  }
  step(`the roster shows ${bob} as ${await status.getAttribute("title")}`);
  await contact.click();
  const textarea = tab.locator(".chat-textarea").last();
  await textarea.waitFor();
  step(`opened the chat with ${bob}`);
  await textarea.fill(body);
  await textarea.press("Enter");
  step(`sent ${JSON.stringify(body)}`);

  await tab.locator(".chat-msg__text", { hasText: reply }).first().waitFor();
  step(`bob's reply shows in the chat view: ${JSON.stringify(reply)}`);

  // The paperclip appears once Converse has found an upload service in the
  // domain's disco#items (upload.DOMAIN) that supports urn:xmpp:http:upload:0.
  const clip = tab.locator('converse-chat-toolbar button[title="Choose a file to send"]').last();
  await clip.waitFor();
  step("the toolbar has the file upload button (upload service discovered)");
  const [chooser] = await Promise.all([tab.waitForEvent("filechooser"), clip.click()]);
  await chooser.setFiles(uploadFile);
  const name = path.basename(uploadFile);
  step(`picked ${name} in the file chooser of Converse's <input type=file>`);

  // Converse shows the sent file in alice's message as an image (its URL
  // ends in .png) fetched from xmppd's upload service.
  const img = tab.locator(`.chat-msg[data-from^="${alice}/"] img.chat-image[src*="${name}"]`).last();
  await img.waitFor();
  // The PNG's own size (IHDR): the browser decoded exactly this image.
  const png = await readFile(uploadFile);
  const [w, h] = [png.readUInt32BE(16), png.readUInt32BE(20)];
  await tab.waitForFunction(([el, w, h]) => el.complete && el.naturalWidth === w && el.naturalHeight === h,
    [await img.elementHandle(), w, h]);
  const src = await img.getAttribute("src");
  step(`the sent file shows in the chat view as a ${w}x${h} image loaded from ${src.split("?")[0]}`);
  // bob (slixmpp) stays online until alice logs out: the roster still
  // shows him online in the screenshot.
  if ((await status.getAttribute("title")) !== "This contact is online") {
    throw new Error(`before the screenshot the roster shows bob as ${await status.getAttribute("title")}`);
  }
  await tab.screenshot({ path: shot, animations: "disabled" });
  step(`screenshot of the chat: ${shot}`);
  step(`error stanzas from xmppd to Converse: ${errors}`);

  // Log out as a user would (profile, "Log out", confirm): Converse ends
  // the stream with <close/> (RFC 7395 §3.6) and the login form returns.
  const closed = new Promise((ok) => wsClosed.push(ok));
  await tab.locator("a.show-profile").first().click();
  await tab.locator("converse-profile-modal button.btn-danger", { hasText: "Log out" }).click();
  await tab.locator('.modal.show button[type="submit"]', { hasText: "Confirm" }).click();
  step("logged out (profile, Log out, Confirm)");
  await Promise.race([closed, new Promise((_, no) => setTimeout(() => no(new Error("the WebSocket did not close within 30s of logging out")), STEP_MS))]);
  await tab.locator("#converse-login-jid").waitFor();
  step("the WebSocket is closed and Converse shows its login form again");
}

const timer = setTimeout(() => fail("timed out after 150s"), 150000);
try {
  await run();
} catch (e) {
  await fail(e.message.split("\n").slice(0, 6).join(" | "));
}
clearTimeout(timer);
await browser.close();
web.closeAllConnections();
web.close();
step("OK");
// Not waiting for the event loop to drain: playwright-core keeps it alive
// for a while after the browser has gone.
process.exit(0);
