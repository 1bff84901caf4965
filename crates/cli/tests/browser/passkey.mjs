// Issue 17: a person with a passkey, in Debian's Chromium (driven by playwright-core) with its
// virtual authenticator (Chrome DevTools Protocol `WebAuthn` domain: a CTAP2 platform
// authenticator with resident keys and user verification, the person's touch simulated).
//
// 1. Signs in with the password on the account page, adds a passkey ("Add a passkey"), and
//    signs out.
// 2. A mail program (registered here, PKCE, a loopback listener as in RFC 8252 §7.3) opens its
//    authorization URL; the person clicks "Sign in with a passkey" (no name typed), approves,
//    and the program redeems the code for a token for RESOURCE, which it prints.
//
// Usage: node passkey.mjs BASE_URL ADDRESS PASSWORD RESOURCE SCREENSHOTS
// Prints one JSON object with what it saw; exits non-zero on any failure.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, address, password, resource, screenshots] = process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });
const base64url = (bytes) => Buffer.from(bytes).toString("base64url");
const seen = {};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  timeout: 30000,
});
const context = await browser.newContext();
const page = await context.newPage();
page.setDefaultTimeout(20000);
const consoleLines = [];
page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));

try {
  // The virtual authenticator, attached to this page's target.
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // 1. Password sign-in, then "Add a passkey" on the account page.
  await page.goto(`${base}/account`);
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("form[action$='/login'] button[type=submit]");
  await page.waitForSelector("text=Devices with access to");
  await page.fill("#passkey-name", "Test laptop (virtual authenticator)");
  await page.click("#passkey-add");
  await page.waitForSelector("#passkeys >> text=Test laptop (virtual authenticator)");
  seen.accountPage = await page.innerText("#passkeys");
  await page.screenshot({ path: `${screenshots}/passkey-added.png`, fullPage: true });
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  seen.credentials = credentials.map((credential) => ({
    resident: credential.isResidentCredential,
    rpId: credential.rpId,
    signCount: credential.signCount,
    userHandleBytes: Buffer.from(credential.userHandle || "", "base64").length,
  }));
  await page.click("form[action$='/account/logout'] button");
  await page.waitForSelector("text=You are signed out.");

  // 2. A mail program's authorization request.
  const registration = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/callback"], client_name: "Passkey Test Mail" }),
  }).then((response) => response.json());
  const verifier = base64url(randomBytes(32));
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
    ["client_id", registration.client_id],
    ["redirect_uri", redirectUri],
    ["scope", "urn:ietf:params:oauth:scope:mail offline_access"],
    ["state", "passkey-state"],
    ["code_challenge", base64url(createHash("sha256").update(verifier).digest())],
    ["code_challenge_method", "S256"],
    ["resource", resource],
  ]) {
    authorize.searchParams.append(name, value);
  }
  await page.goto(authorize.href);
  seen.signInPage = await page.innerText("body");
  await page.screenshot({ path: `${screenshots}/passkey-sign-in.png`, fullPage: true });
  await page.click("#passkey-sign-in");
  await page.waitForSelector("text=Allow access to your account?");
  seen.consentText = await page.innerText("body");
  await page.screenshot({ path: `${screenshots}/passkey-consent.png`, fullPage: true });
  await page.click("button[value=approve]");
  const parameters = await answer;
  listener.close();
  seen.redirect = { state: parameters.state, iss: parameters.iss, hasCode: Boolean(parameters.code) };
  const tokens = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: parameters.code,
      redirect_uri: redirectUri,
      client_id: registration.client_id,
      code_verifier: verifier,
      resource,
    }),
  }).then((response) => response.json());
  seen.accessToken = tokens.access_token;
  seen.tokenError = tokens.error;
  const after = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  seen.signCountAfter = after.credentials.map((credential) => credential.signCount);
} catch (error) {
  seen.error = String(error && error.stack || error);
  seen.console = consoleLines;
  await page.screenshot({ path: `${screenshots}/failure.png`, fullPage: true }).catch(() => {});
  console.log(JSON.stringify(seen));
  await browser.close();
  process.exit(1);
}
await browser.close();
seen.console = consoleLines;
console.log(JSON.stringify(seen));
