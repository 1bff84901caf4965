// A person in Debian's Chromium (driven by playwright-core) signs in to Roundcube with Letterlock:
// Roundcube's "Letterlock" button leads to Letterlock's sign-in and consent pages; after the
// approval Roundcube redeems the code (client_secret_post, no PKCE), logs in to the IMAP door
// with XOAUTH2 and shows the mailbox, where a known message must be listed. Then, when SEND is
// given, the person writes a message to themself, sends it through the SMTP door, and waits for
// it to arrive in the mailbox. Screenshots of each step go to SCREENSHOTS.
//
// Usage: node webmail.mjs ROUNDCUBE_URL ADDRESS PASSWORD KNOWN_SUBJECT SCREENSHOTS [SEND_SUBJECT]
// Prints one JSON object with what it saw; exits non-zero on any failure (the last screenshot
// is SCREENSHOTS/failure.png).

import { mkdirSync } from "node:fs";
import { launchChromium } from "./mail_program.mjs";

const [roundcube, address, password, knownSubject, screenshots, sendSubject] = process.argv.slice(2);
mkdirSync(screenshots, { recursive: true });

// Every wait is bounded: the test around this script kills it after its own deadline too.
const STEP = 30_000;

const browser = await launchChromium();
const seen = {};
const page = await browser.newPage();
page.setDefaultTimeout(STEP);
try {
  await page.goto(roundcube);
  seen.roundcubeTitle = await page.title();
  await page.screenshot({ path: `${screenshots}/1-roundcube-login.png`, fullPage: true });
  seen.oauthButton = await page.innerText("#rcmloginoauth");
  await page.click("#rcmloginoauth");

  // Letterlock's pages: sign in, then the one consent page.
  await page.waitForSelector("#password");
  seen.authorizeUrl = page.url();
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.screenshot({ path: `${screenshots}/2-letterlock-sign-in.png`, fullPage: true });
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Allow access to your account?");
  seen.consentText = await page.innerText("body");
  await page.screenshot({ path: `${screenshots}/3-letterlock-consent.png`, fullPage: true });
  await page.click("button[value=approve]");

  // Back in Roundcube: the mailbox, with the known message listed.
  await page.waitForURL((url) => url.href.startsWith(roundcube) && url.searchParams.get("_task") === "mail");
  await page.waitForSelector(`#messagelist >> text=${knownSubject}`);
  seen.mailboxUrl = page.url();
  seen.messageList = await page.innerText("#messagelist");
  await page.screenshot({ path: `${screenshots}/4-roundcube-mailbox.png`, fullPage: true });

  if (sendSubject) {
    await page.goto(`${roundcube}?_task=mail&_action=compose`);
    await page.waitForSelector("#compose-subject");
    // Elastic's recipient widget: type the address into its visible input, then a comma.
    await page.locator(".recipient-input input").first().fill(`${address},`);
    await page.fill("#compose-subject", sendSubject);
    await page.fill("#composebody", "Sent by Roundcube through Letterlock's SMTP door.");
    await page.screenshot({ path: `${screenshots}/5-roundcube-compose.png`, fullPage: true });
    // The compose screen's own Send command (its handler reads its second argument).
    await page.evaluate(() => window.rcmail.command("send", {}));
    // Roundcube goes back to the mailbox once the message is sent; then wait for the delivery.
    await page.waitForURL((url) => url.searchParams.get("_action") !== "compose", { timeout: STEP });
    const deadline = Date.now() + STEP;
    for (;;) {
      await page.goto(`${roundcube}?_task=mail&_mbox=INBOX`);
      await page.waitForSelector("#messagelist");
      if ((await page.innerText("#messagelist")).includes(sendSubject)) break;
      if (Date.now() > deadline) throw new Error(`"${sendSubject}" did not arrive in the mailbox`);
      await page.waitForTimeout(1000);
    }
    seen.messageListAfterSending = await page.innerText("#messagelist");
    await page.screenshot({ path: `${screenshots}/6-roundcube-sent-and-received.png`, fullPage: true });
  }
} catch (error) {
  await page.screenshot({ path: `${screenshots}/failure.png`, fullPage: true }).catch(() => {});
  seen.error = String(error);
  seen.failedAt = page.url();
  seen.failedPage = await page.innerText("body").catch(() => "");
  console.log(JSON.stringify(seen));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify(seen));
