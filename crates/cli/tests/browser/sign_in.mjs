// A person in a real browser (Debian's Chromium, driven by playwright-core) signs in to a mail
// program through Letterlock: the program registers, opens the authorization page with PKCE and
// a loopback redirect (RFC 8252 §7.3); the person signs in with the name and password they have
// (whatever source proves them), approves once, and the program exchanges the code for tokens
// for RESOURCE (RFC 8707).
//
// Usage: node sign_in.mjs BASE_URL NAME PASSWORD RESOURCE
// Prints one JSON object: the sign-in page's title, the consent page's text and the tokens, or,
// when the sign-in page answers with an error instead of the consent page, its text
// (`signInRefused`). Exits non-zero on any other failure.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const [base, name, password, resource] = process.argv.slice(2);
const base64url = (bytes) => Buffer.from(bytes).toString("base64url");

const registration = await fetch(`${base}/register`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/callback"], client_name: "Sign-in Test Mail" }),
}).then((response) => response.json());
const clientId = registration.client_id;
const verifier = base64url(randomBytes(32));
const challenge = base64url(createHash("sha256").update(verifier).digest());
const state = base64url(randomBytes(12));

let answered;
const answer = new Promise((resolve) => (answered = resolve));
const listener = createServer((request, response) => {
  const url = new URL(request.url, "http://127.0.0.1");
  response.writeHead(200, { "Content-Type": "text/html" });
  response.end("<!doctype html><title>Done</title><h1>You can close this window.</h1>");
  answered(Object.fromEntries(url.searchParams));
});
await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
const redirectUri = `http://127.0.0.1:${listener.address().port}/callback`;

const authorize = new URL(`${base}/authorize`);
for (const [key, value] of [
  ["response_type", "code"],
  ["client_id", clientId],
  ["redirect_uri", redirectUri],
  ["scope", "urn:ietf:params:oauth:scope:mail offline_access"],
  ["state", state],
  ["code_challenge", challenge],
  ["code_challenge_method", "S256"],
  ["resource", resource],
]) {
  authorize.searchParams.append(key, value);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  timeout: 30000,
});
const seen = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(authorize.href);
  seen.signInTitle = await page.title();
  await page.fill("#address", name);
  await page.fill("#password", password);
  const posted = page.waitForResponse((response) => response.url() === `${base}/login`);
  await page.click("button[type=submit]");
  const status = (await posted).status();
  if (status !== 303) {
    await page.waitForLoadState("load");
    seen.signInRefused = { status, text: await page.innerText("body") };
  } else {
    await page.waitForSelector("text=Allow access to your account?");
    seen.consentText = await page.innerText("body");
    await page.fill("#device_name", "Sign-in test laptop");
    await page.click("button[value=approve]");
    const redirect = await answer;
    if (redirect.state !== state) throw new Error(`state mismatch: ${JSON.stringify(redirect)}`);
    seen.tokens = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: redirect.code,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
        resource,
      }),
    }).then((response) => response.json());
  }
} finally {
  await browser.close();
  listener.close();
}
console.log(JSON.stringify(seen));
