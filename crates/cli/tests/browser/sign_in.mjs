// A person in a real browser (Debian's Chromium, driven by playwright-core) signs in to a mail
// program through Letterlock: the program registers, opens the authorization page with PKCE and
// a loopback redirect (RFC 8252 §7.3); the person signs in with the name and password they have
// (whatever source proves them), approves once, and the program exchanges the code for tokens
// for RESOURCE (RFC 8707).
//
// Usage: node sign_in.mjs BASE_URL NAME PASSWORD RESOURCE
// Prints one JSON object: the sign-in page's title, the consent page's text and the tokens, or,
// when the sign-in page answers with an error instead of the consent page, its text
// (`signInRefused`). Exits non-zero on any other failure.

import { launchChromium, mailProgram } from "./mail_program.mjs";

const [base, name, password, resource] = process.argv.slice(2);
const program = await mailProgram(base, {
  clientName: "Sign-in Test Mail",
  parameters: [["resource", resource]],
});
const browser = await launchChromium();
const seen = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(program.authorize.href);
  seen.signInTitle = await page.title();
  await page.fill("#address", name);
  await page.fill("#password", password);
  const posted = page.waitForResponse((response) => response.url() === `${base}/login`);
  await page.click("button[type=submit]");
  const status = (await posted).status();
  if (status !== 303) {
    await page.waitForLoadState("load");
    seen.signInRefused = { status, text: await page.innerText("body") };
  } else {
    await page.waitForSelector("text=Allow access to your account?");
    seen.consentText = await page.innerText("body");
    await page.fill("#device_name", "Sign-in test laptop");
    await page.click("button[value=approve]");
    const redirect = await program.answer;
    if (redirect.state !== program.state) {
      throw new Error(`state mismatch: ${JSON.stringify(redirect)}`);
    }
    seen.tokens = await program.redeem(redirect.code, { resource });
  }
} finally {
  await browser.close();
  program.close();
}
console.log(JSON.stringify(seen));
