// Issue 17: a person sets up a one-time code app (TOTP, RFC 6238) on the account page in Debian's
// Chromium, signs out, then signs in again through a mail client's authorization request with
// the password and a code, and approves. The "app" is this script: it reads the key the set-up
// page shows, as a person would type it into their phone, and computes the codes (RFC 6238 with
// HMAC-SHA-1 from Node's crypto, not Letterlock's code).
//
// Usage: node totp.mjs BASE_URL ADDRESS PASSWORD RESOURCE SCREENSHOTS
// Prints one JSON object with what it saw and the tokens; exits non-zero on any failure.

import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, address, password, resource, screenshots] = process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });
const base64url = (bytes) => Buffer.from(bytes).toString("base64url");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// RFC 4648 §6 base32, as the page shows it (groups of four, spaces ignored).
const base32 = (text) => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const bytes = [];
  for (const character of text.replace(/[\s=]/g, "").toUpperCase()) {
    const index = alphabet.indexOf(character);
    if (index < 0) throw new Error(`not base32: ${character}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
};
// RFC 6238 §4 over RFC 4226 §5.3: 30-second steps, six digits.
const stepNow = () => Math.floor(Date.now() / 1000 / 30);
const totp = (key, step) => {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, "0");
};

// The mail client: registration, PKCE, and a loopback listener for the redirect (RFC 8252 §7.3).
const registration = await fetch(`${base}/register`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/callback"], client_name: "TOTP Test Mail" }),
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
for (const [name, value] of [
  ["response_type", "code"],
  ["client_id", clientId],
  ["redirect_uri", redirectUri],
  ["scope", "urn:ietf:params:oauth:scope:mail offline_access"],
  ["state", state],
  ["code_challenge", challenge],
  ["code_challenge_method", "S256"],
  ["resource", resource],
  ["login_hint", address],
]) {
  authorize.searchParams.append(name, value);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = { clientId };
const page = await browser.newPage();
try {
  page.setDefaultTimeout(20000);

  // 1. Sign in with the password alone (no factor yet) and set one up on the account page.
  await page.goto(`${base}/account`);
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Devices with access");
  seen.statusBefore = await page.innerText("#totp-status");
  await page.click("form[action$=\"/account/totp/setup\"] button");
  await page.waitForSelector("#totp-secret");
  await page.screenshot({ path: `${screenshots}/totp-1-set-up.png`, fullPage: true });
  seen.uri = await page.getAttribute("#totp-uri", "href");
  const shownKey = (await page.innerText("#totp-secret")).replace(/\s/g, "");
  const key = base32(shownKey);
  seen.keyBytes = key.length;
  const setUpStep = stepNow();
  await page.fill("#code", totp(key, setUpStep));
  await page.click("button:text-is(\"Turn on\")");
  await page.waitForSelector("#recovery-codes");
  seen.recoveryCodes = (await page.$$("#recovery-codes li")).length;
  await page.screenshot({ path: `${screenshots}/totp-2-recovery-codes.png`, fullPage: true });
  await page.goto(`${base}/account`);
  seen.statusAfter = await page.innerText("#totp-status");
  // The key is shown once, at set-up, and never again.
  seen.accountShowsKey = (await page.content()).includes(shownKey);
  await page.click("form[action$=\"/account/logout\"] button");
  await page.waitForSelector("text=You are signed out.");

  // 2. The mail client's authorization request: the password, then the code step.
  await page.goto(authorize.href);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Enter your one-time code");
  seen.codeStepUrl = new URL(page.url()).pathname;
  await page.screenshot({ path: `${screenshots}/totp-3-code-step.png`, fullPage: true });
  // The code that turned the app on, again: refused while its step is still in the window.
  if (stepNow() <= setUpStep + 1) {
    await page.fill("#code", totp(key, setUpStep));
    await page.click("button[type=submit]");
    await page.waitForSelector("[role=alert]");
    seen.replayed = await page.innerText("[role=alert]");
  } else {
    seen.replayed = "skipped: the machine took more than a step to get here";
  }
  // A fresh code: the app's next one.
  while (stepNow() <= setUpStep) await sleep(500);
  await page.fill("#code", totp(key, stepNow()));
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Allow access to your account?");
  await page.fill("#device_name", "TOTP laptop");
  const redirected = page.waitForURL((target) => target.origin !== base, { waitUntil: "load" });
  await page.click("button[value=approve]");
  await redirected;
} catch (error) {
  // What the person was looking at when it went wrong.
  console.error(`at ${page.url()}:\n${await page.innerText("body").catch(() => "")}`);
  throw error;
} finally {
  await browser.close();
}
const redirect = await answer;
listener.close();
seen.iss = redirect.iss;
if (redirect.state !== state) throw new Error("state differs");
const tokens = await fetch(`${base}/token`, {
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
seen.accessToken = tokens.access_token;
seen.refreshToken = tokens.refresh_token;
console.log(JSON.stringify(seen));
