// A person in a real browser (Debian's Chromium, driven by playwright-core): signs in, reads the
// one consent page, approves, lands on the mail client's loopback listener with a code; then, on
// the devices page, revokes that device. Screenshots of each page go to SCREENSHOTS.
//
// Before that, an attacker's page on another origin (another loopback port, and `localhost`, which
// is another site) posts the sign-in form with the attacker's own account and sign-in token; the
// browser must not end up signed in (login CSRF).
//
// Usage: node flow.mjs BASE_URL ADDRESS PASSWORD SCREENSHOTS ATTACKER_ADDRESS ATTACKER_PASSWORD
// Prints one JSON object with what it saw; exits non-zero on any failure.

import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { launchChromium, mailProgram } from "./mail_program.mjs";

const [base, address, password, screenshots, attackerAddress, attackerPassword] =
  process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });

// The mail client: registration, PKCE, and a loopback listener for the redirect (RFC 8252 §7.3).
const program = await mailProgram(base, {
  clientName: "Browser Test Mail",
  scope: "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:contacts urn:ietf:params:oauth:scope:calendars offline_access",
  parameters: [["login_hint", address]],
});
const { authorize, clientId, state } = program;

const browser = await launchChromium();
const seen = {};

// The attacker's page: the sign-in form as the attacker's own browser got it (hidden fields and
// all), filled with the attacker's account, posted by script as soon as the page loads.
const attackerForm = await fetch(`${base}/account`).then((response) => response.text());
const hidden = [...attackerForm.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)];
const escapeHtml = (text) => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
const fields = [...hidden.map((match) => [match[1], match[2].replace(/&amp;/g, "&")]),
  ["address", attackerAddress], ["password", attackerPassword]]
  .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
  .join("");
const attackerSite = createServer((request, response) => {
  response.writeHead(200, { "Content-Type": "text/html" });
  response.end(`<!doctype html><title>Win a prize</title><body onload="document.forms[0].submit()">` +
    `<form method="post" action="${base}/login">${fields}</form></body>`);
});
await new Promise((resolve) => attackerSite.listen(0, "127.0.0.1", resolve));
const attackerPort = attackerSite.address().port;
seen.loginCsrf = {};
try {
  for (const [name, origin] of [
    ["otherPort", `http://127.0.0.1:${attackerPort}`],
    ["otherSite", `http://localhost:${attackerPort}`],
  ]) {
    const context = await browser.newContext();
    const victim = await context.newPage();
    // The victim has seen the real sign-in page before (so the browser holds its cookie).
    await victim.goto(`${base}/account`);
    const posted = victim.waitForResponse((response) => response.url() === `${base}/login`);
    await victim.goto(`${origin}/prize`);
    const response = await posted;
    const status = response.status();
    const sent = await response.request().allHeaders();
    // Where the post landed (a refusal, or the devices page after a redirect) has loaded.
    await victim.waitForURL((url) => url.href.startsWith(base), { waitUntil: "load" });
    await victim.goto(`${base}/account`);
    seen.loginCsrf[name] = {
      status,
      origin: sent.origin ?? null,
      fetchSite: sent["sec-fetch-site"] ?? null,
      account: await victim.innerText("body"),
    };
    await context.close();
  }
} catch (error) {
  await browser.close();
  throw error;
} finally {
  attackerSite.close();
}

try {
  const page = await browser.newPage();
  await page.goto(authorize.href);
  seen.signInTitle = await page.title();
  seen.addressPrefilled = await page.inputValue("#address");
  await page.screenshot({ path: `${screenshots}/1-sign-in.png`, fullPage: true });
  await page.fill("#password", password);
  const signedIn = page.waitForResponse((response) => response.url() === `${base}/login`);
  await page.click("button[type=submit]");
  const ownHeaders = await (await signedIn).request().allHeaders();
  seen.ownSignIn = { origin: ownHeaders.origin ?? null, fetchSite: ownHeaders["sec-fetch-site"] ?? null };
  await page.waitForSelector("text=Allow access to your account?");
  seen.consentText = await page.innerText("body");
  seen.consentFramePolicy = (await page.evaluate(() => document.contentType)) === "text/html";
  await page.fill("#device_name", "Browser laptop");
  await page.screenshot({ path: `${screenshots}/2-consent.png`, fullPage: true });
  await page.click("button[value=approve]");
  seen.redirect = await program.answer;
  await page.waitForSelector("text=You can close this window.");

  const tokens = await program.redeem(seen.redirect.code);
  seen.tokenType = tokens.token_type;
  seen.refreshToken = tokens.refresh_token;
  seen.clientId = clientId;
  seen.state = state;

  // The devices page: the new device is listed; revoke it.
  await page.goto(`${base}/account`);
  seen.devicesBefore = await page.innerText("table");
  await page.screenshot({ path: `${screenshots}/3-devices.png`, fullPage: true });
  await page.click("form[action$='/account/revoke'] button");
  await page.waitForSelector("text=Revoked");
  seen.devicesAfter = await page.innerText("table");
  await page.screenshot({ path: `${screenshots}/4-revoked.png`, fullPage: true });

  // A page trying to frame the consent page is refused by the browser.
  const framing = await browser.newPage();
  await framing.setContent(`<iframe id="victim" src="${authorize.href}"></iframe>`);
  await framing.waitForTimeout(500);
  const frame = framing.frames().find((candidate) => candidate !== framing.mainFrame());
  seen.framedContent = frame ? await frame.evaluate(() => document.body ? document.body.innerText : "").catch(() => "") : "";
} finally {
  await browser.close();
  program.close();
}
console.log(JSON.stringify(seen));
