// Issue 17: a person sets up a one-time code app (TOTP, RFC 6238) on the account page in Debian's
// Chromium, signs out, then signs in again through a mail client's authorization request with
// the password and a code, and approves. The "app" is this script: it reads the key the set-up
// page shows, as a person would type it into their phone, and computes the codes (RFC 6238 with
// HMAC-SHA-1 from Node's crypto, not Letterlock's code).
//
// Usage: node totp.mjs BASE_URL ADDRESS PASSWORD RESOURCE SCREENSHOTS
// Prints one JSON object with what it saw and the tokens; exits non-zero on any failure.

import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { launchChromium, mailProgram } from "./mail_program.mjs";

const [base, address, password, resource, screenshots] = process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });
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
const program = await mailProgram(base, {
  clientName: "TOTP Test Mail",
  parameters: [["resource", resource], ["login_hint", address]],
});
const { clientId } = program;
const browser = await launchChromium();
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
  await page.goto(program.authorize.href);
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
const redirect = await program.answer;
program.close();
seen.iss = redirect.iss;
if (redirect.state !== program.state) throw new Error("state differs");
const tokens = await program.redeem(redirect.code, { resource });
seen.accessToken = tokens.access_token;
seen.refreshToken = tokens.refresh_token;
console.log(JSON.stringify(seen));
