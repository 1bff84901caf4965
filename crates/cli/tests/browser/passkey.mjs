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

import { mkdirSync } from "node:fs";
import { launchChromium, mailProgram } from "./mail_program.mjs";

const [base, address, password, resource, screenshots] = process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });
const seen = {};

const browser = await launchChromium();
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
  const program = await mailProgram(base, {
    clientName: "Passkey Test Mail",
    parameters: [["resource", resource]],
    state: "passkey-state",
  });
  await page.goto(program.authorize.href);
  seen.signInPage = await page.innerText("body");
  await page.screenshot({ path: `${screenshots}/passkey-sign-in.png`, fullPage: true });
  await page.click("#passkey-sign-in");
  await page.waitForSelector("text=Allow access to your account?");
  seen.consentText = await page.innerText("body");
  await page.screenshot({ path: `${screenshots}/passkey-consent.png`, fullPage: true });
  await page.click("button[value=approve]");
  const parameters = await program.answer;
  program.close();
  seen.redirect = { state: parameters.state, iss: parameters.iss, hasCode: Boolean(parameters.code) };
  const tokens = await program.redeem(parameters.code, { resource });
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
