// The person at the desktop when a mail program opens Letterlock's authorization page in "the
// system browser" (Thunderbird's external-browser mode): Debian's Chromium, driven by
// playwright-core, opens the URL, signs in, approves on the consent page, and follows the
// redirect to the program's own loopback listener (RFC 8252 §7.3), which answers with a page.
//
// Usage: node person.mjs URL ADDRESS PASSWORD
// Prints one JSON object with what it saw (the consent text, where the redirect went, the
// listener's page); exits non-zero on any failure.

import { launchChromium } from "./mail_program.mjs";

const [url, address, password] = process.argv.slice(2);
const base = new URL(url).origin;
const seen = { opened: url };

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(url);
  seen.signInTitle = await page.title();
  seen.addressPrefilled = await page.inputValue("#address");
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Allow access to your account?");
  seen.consentText = await page.innerText("body");
  await page.fill("#device_name", "Thunderbird on the test desktop");
  // The redirect leaves Letterlock's origin for the program's loopback listener.
  const redirected = page.waitForURL((target) => target.origin !== base, { waitUntil: "load" });
  await page.click("button[value=approve]");
  await redirected;
  const landed = new URL(page.url());
  seen.redirect = {
    origin: landed.origin,
    path: landed.pathname,
    parameters: [...landed.searchParams.keys()].sort(),
    iss: landed.searchParams.get("iss"),
  };
  seen.listenerPage = await page.innerText("body").catch(() => "");
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
