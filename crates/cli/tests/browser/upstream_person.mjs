// A person who signs in to Letterlock with an upstream OpenID provider ("Sign in with ...",
// issue 17), in Debian's Chromium driven by playwright-core: a mail client (registration, PKCE,
// a loopback listener, RFC 8252 §7.3) opens the authorization page; the person clicks the
// provider's button, signs in on the provider's own pages (oidc-provider, upstream_op.mjs),
// allows it to share the address, approves on Letterlock's consent page, and the client
// redeems the code for tokens for RESOURCE.
//
// Usage: node upstream_person.mjs BASE_URL LABEL LOGIN PASSWORD RESOURCE
// Prints one JSON object with what it saw: `refused` (the page's text) when Letterlock answers
// the provider's sign-in with a refusal instead of its consent page, else `consent` and the
// `tokens`. Exits non-zero on any other failure.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const [base, label, login, password, resource] = process.argv.slice(2);
const base64url = (bytes) => Buffer.from(bytes).toString("base64url");
const seen = {};

const registration = await fetch(`${base}/register`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/callback"], client_name: "Upstream Test Mail" }),
}).then((response) => response.json());
const clientId = registration.client_id;
const verifier = base64url(randomBytes(32));
const challenge = base64url(createHash("sha256").update(verifier).digest());

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
for (const [name, value] of [
  ["response_type", "code"],
  ["client_id", clientId],
  ["redirect_uri", redirectUri],
  ["scope", "urn:ietf:params:oauth:scope:mail offline_access"],
  ["state", base64url(randomBytes(12))],
  ["code_challenge", challenge],
  ["code_challenge_method", "S256"],
  ["resource", resource],
]) {
  authorize.searchParams.append(name, value);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  timeout: 30000,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(authorize.href);
  seen.signInTitle = await page.title();
  await page.getByRole("button", { name: `Sign in with ${label}` }).click();
  // The provider's own pages: its login form, then its consent.
  await page.waitForSelector("input[name=login]");
  seen.providerOrigin = new URL(page.url()).origin;
  await page.fill("input[name=login]", login);
  await page.fill("input[name=password]", password);
  await page.getByRole("button", { name: "Sign in upstream" }).click();
  await page.getByRole("button", { name: "Allow" }).click();
  // Back at Letterlock: its consent page, or a refusal.
  await page.waitForURL((target) => target.origin === base, { waitUntil: "load" });
  const text = await page.innerText("body");
  if (!text.includes("Allow access to your account?")) {
    seen.refused = text;
    seen.refusedTitle = await page.title();
  } else {
    seen.consent = text;
    await page.click("button[value=approve]");
    seen.redirect = await answer;
    await page.waitForSelector("text=You can close this window.");
    seen.tokens = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: seen.redirect.code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: redirectUri,
        resource,
      }),
    }).then((response) => response.json());
  }
} finally {
  await browser.close();
  listener.close();
}
console.log(JSON.stringify(seen));
