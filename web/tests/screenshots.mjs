// The README's pictures of the console: `node web/tests/screenshots.mjs docs/console`
// (after `cargo build -p planx` and `npm ci` in web/). Not a test.

import { mkdirSync } from "node:fs";
import path from "node:path";

import { launch, startPlanx } from "./harness.mjs";

const out = path.resolve(process.argv[2] || "docs/console");
mkdirSync(out, { recursive: true });
const email = "ada@example.com";
const password = "correct horse battery staple";
const planx = await startPlanx({ user: { email, password } });
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 900, height: 560 });
  const base = `http://localhost:${planx.port}/console/`;

  await page.goto(`${base}#/signin`);
  await page.fill("#login-password input[name=email]", email);
  await page.fill("#login-password input[name=password]", "a wrong password");
  await page.click("#login-password button[type=submit]");
  await page.locator("#login-password .error").waitFor();
  await page.screenshot({ path: path.join(out, "sign-in.png") });

  await page.fill("#login-password input[name=password]", password);
  await page.click("#login-password button[type=submit]");
  await page.locator("#profile").waitFor();
  await page.fill("#set-name input[name=name]", "Ada Lovelace");
  await page.click("#set-name button[type=submit]");
  await page.locator("#notice", { hasText: "Name saved." }).waitFor();
  await page.screenshot({ path: path.join(out, "account.png") });

  await page.click("#totp-start");
  await page.locator("#totp img.qr").waitFor();
  await page.locator("#totp").screenshot({ path: path.join(out, "totp.png") });
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  planx.stop();
}
