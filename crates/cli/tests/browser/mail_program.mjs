// What every browser test needs besides the person: Debian's Chromium, launched the same way,
// and a native mail program's side of the code flow: it registers, opens the authorization page
// with PKCE S256 (RFC 7636) and a loopback redirect (RFC 8252 §7.3) on a listener of its own,
// and redeems the code it receives.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

export const base64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** Debian's Chromium, headless, without the background traffic a test does not want. */
export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: 30000,
  });
}

/**
 * A mail program registered at `base` as `clientName`, listening for its redirect. `parameters`
 * are added to the authorization request (`resource`, `login_hint`, ...); `scope` defaults to
 * mail with a refresh token, `state` to a random value. Returns its `clientId`, `state`, `redirectUri`, the `authorize`
 * URL, `answer` (a promise of the redirect's parameters), `redeem(code, extra)` (the token
 * response for the code, with `extra` form fields) and `close()` (the listener).
 */
export async function mailProgram(base, {
  clientName,
  parameters = [],
  scope = "urn:ietf:params:oauth:scope:mail offline_access",
  state = base64url(randomBytes(12)),
}) {
  const registration = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/callback"], client_name: clientName }),
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
    ["scope", scope],
    ["state", state],
    ["code_challenge", challenge],
    ["code_challenge_method", "S256"],
    ...parameters,
  ]) {
    authorize.searchParams.append(name, value);
  }

  const redeem = (code, extra = {}) =>
    fetch(`${base}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
        ...extra,
      }),
    }).then((response) => response.json());

  return { clientId, state, redirectUri, authorize, answer, redeem, close: () => listener.close() };
}
