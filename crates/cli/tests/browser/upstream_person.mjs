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

import { launchChromium, mailProgram } from "./mail_program.mjs";

const [base, label, login, password, resource] = process.argv.slice(2);
const seen = {};
const program = await mailProgram(base, {
  clientName: "Upstream Test Mail",
  parameters: [["resource", resource]],
});
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(program.authorize.href);
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
    seen.redirect = await program.answer;
    await page.waitForSelector("text=You can close this window.");
    seen.tokens = await program.redeem(seen.redirect.code, { resource });
  }
} finally {
  await browser.close();
  program.close();
}
console.log(JSON.stringify(seen));
