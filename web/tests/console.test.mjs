// The reference console in Chromium against `planx serve`, in the three
// layouts a deployment can have (README, "Use it from a web console"), or,
// with PLANX_LAMBDA_URL (scripts/e2e), in the same-origin layout against the
// five Lambda functions behind `cargo lambda watch` (harness.mjs, `backend`):
//   same origin    the console served by `planx serve --console`, http://localhost
//   sibling hosts  console.example.test and api.example.test, COOKIE_DOMAIN=example.test
//   another site   console.other.test and api.example.test, COOKIE_SAMESITE=none
// The sibling and cross-site layouts run over HTTPS (a certificate made now,
// a reverse proxy in front of planx serve) with CORS from --cors-origin.
// The tests of one layout are one account's story and run in order.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import qrcode from "qrcode-generator";

import { backend, currentStep, freePort, launch, makeCertificate, startLark, startProxy, totp, withSteps } from "./harness.mjs";

const EMAIL = "ada@example.test";
const PHONE = "+14155550123";
const HOSTS = ["*.example.test", "*.other.test"];

// `lark`: Lark sign-in and linking against a stand-in (harness.mjs,
// `startLark`). Not for a console on another site: Lark's pages are top-level
// navigations to the API, where the console's partitioned (CHIPS) cookies are
// not sent and the ones set are the API site's own partition, which the
// console's calls never see (README, Lark sign-in).
const LAYOUTS = [
  { name: "same origin", env: {}, xsrfFrom: "cookie", sameSite: "Lax", lark: true },
  {
    name: "sibling hosts",
    consoleHost: "console.example.test",
    apiHost: "api.example.test",
    env: { COOKIE_DOMAIN: "example.test" },
    xsrfFrom: "cookie",
    sameSite: "Lax",
    lark: true,
  },
  {
    name: "another site",
    consoleHost: "console.other.test",
    apiHost: "api.example.test",
    env: { COOKIE_SAMESITE: "none" },
    // The page cannot read a cookie of the API's site: the token comes from
    // the X-XSRF-TOKEN header of GET /.
    xsrfFrom: "header",
    sameSite: "None",
    lark: false,
  },
];

/** Who approves at the stand-in's authorize page. */
const LARK_PERSON = {
  name: "Ada Lark",
  en_name: "Ada",
  avatar_url: "",
  avatar_thumb: "",
  avatar_middle: "",
  avatar_big: "",
  open_id: "ou_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
  union_id: "on_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
  tenant_key: "736588c92lxf175d",
  email: "unverified@example.test",
};

/**
 * The Domain attribute each cookie has, as Chromium reports it: COOKIE_DOMAIN
 * goes on XSRF-TOKEN only, the cookie the page reads; TOKEN, XSRF-SALT and
 * DEVICE are host-only (the API's host).
 */
function expectedDomain(layout, apiHost, cookie) {
  if (cookie !== "XSRF-TOKEN") return apiHost;
  return layout.env.COOKIE_DOMAIN ? `.${layout.env.COOKIE_DOMAIN}` : apiHost;
}

let tls;
const certificate = () => (tls ??= makeCertificate(HOSTS));

for (const layout of LAYOUTS.filter((l) => !backend.sameOriginOnly || !l.consoleHost)) {
  describe(`console, ${layout.name}, ${backend.name}`, () => {
    let server, proxy, browser, context, page, lark;
    // The Lambda functions' environment is scripts/e2e's: no Lark app there.
    const withLark = layout.lark && !backend.sameOriginOnly;
    let apiBase, apiHost, consoleUrl;
    let password = "correct horse battery staple";

    before(async () => {
      const user = { email: EMAIL, password };
      if (withLark) {
        lark = await startLark({ appId: "cli_a1b2c3d4e5f6a7b8", appSecret: "browser-test-lark-secret", person: LARK_PERSON });
      }
      // The API's callback and the console's routes, once both URLs are known.
      const larkEnv = (redirect, console) => (withLark ? lark.env(redirect, console) : {});
      if (layout.consoleHost) {
        proxy = await startProxy(certificate(), () => server.port);
        apiHost = layout.apiHost;
        apiBase = `https://${apiHost}:${proxy.port}`;
        const origin = `https://${layout.consoleHost}:${proxy.port}`;
        consoleUrl = `${origin}/console/?api=${encodeURIComponent(apiBase)}`;
        const env = { ...layout.env, ...larkEnv(`${apiBase}/lark`, `${consoleUrl}#/`) };
        server = await backend.start({ env, corsOrigins: [origin], user });
      } else {
        // The callback's URL names the port, so it is chosen first.
        const port = withLark ? await freePort() : 0;
        const env = { ...layout.env, ...larkEnv(`http://localhost:${port}/lark`, "/console/#/") };
        server = await backend.start({ env, user, port });
        apiHost = "localhost";
        apiBase = `http://localhost:${server.port}`;
        consoleUrl = `${apiBase}/console/`;
      }
      browser = await launch({ hosts: HOSTS });
      context = browser.context;
      context.setDefaultTimeout(10_000);
      page = await context.newPage();
    });

    after(async () => {
      await browser?.close();
      proxy?.stop();
      server?.stop();
      lark?.stop();
    });

    // One account's story: after a failed step the rest of the layout is skipped.
    let failed = null;
    const test = (name, body) =>
      it(name, async (t) => {
        if (failed) return t.skip(`"${failed}" failed`);
        try {
          await withSteps(context, layout.name, name, (step) => body(step, t));
        } catch (error) {
          failed = name;
          throw error;
        }
      });

    // -------------------------------------------------------------- helpers

    const url = (extra = "") => consoleUrl + (extra && (consoleUrl.includes("?") ? "&" : "?") + extra);

    async function open(target = page, extra = "") {
      await target.goto(url(extra));
      await target.locator("#view form, #profile").first().waitFor();
    }

    async function atSignIn(target = page) {
      await target.waitForURL(/#\/signin/);
      await target.locator("#login-password").waitFor();
    }

    async function atAccount(target = page) {
      await target.waitForURL(/#\/account/);
      await target.locator("#profile").waitFor();
    }

    const fact = (name, target = page) => target.locator(`#profile dd[data-field="${name}"]`).textContent();

    /** Submits `form` and returns the API's answer to `method path`. */
    async function submit(formSelector, method, path, target = page) {
      const [response] = await Promise.all([
        target.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname === path),
        target.click(`${formSelector} button[type=submit]`),
      ]);
      return response;
    }

    /** The error the form shows is the API's `message` for that answer. */
    async function showsApiMessage(formSelector, response, target = page) {
      assert.ok(response.status() >= 400, `expected a refusal, got ${response.status()}`);
      const { message } = await response.json();
      assert.ok(message, "the API explains");
      const slot = target.locator(`${formSelector} .error`);
      await slot.waitFor();
      assert.match(await slot.textContent(), new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    }

    async function signInWithPassword(secret, target = page) {
      await target.goto(url() + "#/signin");
      await atSignIn(target);
      await target.fill("#login-password input[name=email]", EMAIL);
      await target.fill("#login-password input[name=password]", secret);
      await target.click("#login-password button[type=submit]");
      await atAccount(target);
    }

    async function signOut(target = page) {
      await target.click("#logout");
      await atSignIn(target);
      assert.equal(await target.locator("#notice").textContent(), "You are signed out.");
    }

    /** What the API says to this page's cookies. */
    const verify = (target = page) =>
      target.evaluate(async (api) => (await fetch(`${api}/verify`, { credentials: "include" })).status, apiBase);

    const tokenCookie = async () => (await context.cookies(apiBase)).find((c) => c.name === "TOKEN")?.value;

    // -------------------------------------------------------------- flows

    test("the console pings for its CSRF token and can echo it", async (step) => {
      await step("open", () => open());
      await atSignIn();
      const source = await page.evaluate(() => {
        const api = window.planxConsole.api;
        return api.xsrfToken() && api.xsrfSource;
      });
      assert.equal(source, layout.xsrfFrom);
      const readable = await page.evaluate(() => document.cookie.includes("XSRF-TOKEN="));
      assert.equal(readable, layout.xsrfFrom === "cookie", "whether the page can read the XSRF-TOKEN cookie");
    });

    test("a wrong password shows the API's message; the right one signs in with the design's cookies", async (step) => {
      await page.goto(url() + "#/signin");
      await atSignIn();
      await page.fill("#login-password input[name=email]", EMAIL);
      await page.fill("#login-password input[name=password]", "not the password at all");
      const refused = await step("wrong password", () => submit("#login-password", "POST", "/login"));
      assert.equal(refused.status(), 400);
      await showsApiMessage("#login-password", refused);

      await page.fill("#login-password input[name=password]", password);
      const accepted = await step("right password", () => submit("#login-password", "POST", "/login"));
      assert.equal(accepted.status(), 204);
      await atAccount();
      assert.equal(await fact("Email"), EMAIL);

      const cookies = Object.fromEntries((await context.cookies()).map((c) => [c.name, c]));
      for (const name of ["TOKEN", "XSRF-SALT", "XSRF-TOKEN", "DEVICE"]) {
        const c = cookies[name];
        assert.ok(c, `${name} is set`);
        assert.equal(c.secure, true, `${name} is Secure`);
        assert.equal(c.sameSite, layout.sameSite, `${name} SameSite`);
        assert.equal(c.domain, expectedDomain(layout, apiHost, name), `${name} Domain`);
        assert.equal(c.path, "/");
        // Cross-site cookies are Partitioned (CHIPS), keyed by the console's site.
        assert.equal(Boolean(c.partitionKey), layout.sameSite === "None", `${name} partitioned: ${c.partitionKey}`);
      }
      assert.equal(cookies.TOKEN.httpOnly, true, "the page cannot read TOKEN");
      assert.equal(cookies.DEVICE.httpOnly, true, "the page cannot read DEVICE");
      assert.equal(cookies["XSRF-SALT"].httpOnly, true, "the page cannot read XSRF-SALT");
      assert.equal(cookies["XSRF-TOKEN"].httpOnly, false, "XSRF-TOKEN is meant to be read");
      assert.equal(await verify(), 204);
    });

    test("Lark: link from the account page, sign in with it, unlink", async (step, t) => {
      if (!withLark) return t.skip("no Lark in this layout");
      await open();
      await atAccount();
      await step("link", () => page.click("#link-lark"));
      await atAccount();
      await page.locator("#notice", { hasText: "Lark account linked." }).waitFor();
      assert.equal(await page.locator('#lark [data-field="lark-name"]').textContent(), "Ada Lark (Ada)");
      assert.equal((await context.cookies(apiBase)).find((c) => c.name === "LARK_STATE"), undefined, "the state is spent");

      await signOut();
      await step("sign in with Lark", () => page.click("#lark-signin"));
      await atAccount();
      await page.locator("#notice", { hasText: "Signed in with Lark." }).waitFor();
      assert.match(await fact("Last sign-in"), / by lark from /);
      assert.equal(await verify(), 204);

      await step("unlink", () => page.click("#unlink-lark"));
      await page.locator("#notice", { hasText: "Lark account unlinked." }).waitFor();
      await page.locator("#link-lark").waitFor();
      await signOut();
      await step("sign in with the unlinked Lark account", () => page.click("#lark-signin"));
      await atSignIn();
      await page.locator("#notice", { hasText: "No account is linked to that Lark account." }).waitFor();
      assert.equal(await verify(), 401);
      await step("sign in with the password again", () => signInWithPassword(password));
    });

    test("a write without the X-XSRF-TOKEN header is refused with 403", async (step) => {
      const write = (withToken) =>
        page.evaluate(
          async ({ api, withToken }) => {
            const headers = { "Content-Type": "application/json" };
            if (withToken) headers["X-XSRF-TOKEN"] = window.planxConsole.api.xsrfToken();
            const r = await fetch(`${api}/user`, {
              method: "PATCH",
              credentials: "include",
              headers,
              body: JSON.stringify({ key: "name", name: withToken ? "Ada" : "Mallory" }),
            });
            return { status: r.status, body: r.status === 204 ? null : await r.json() };
          },
          { api: apiBase, withToken },
        );
      const refused = await step("without the header", () => write(false));
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, "CSRF_FAILED");
      const allowed = await step("with it", () => write(true));
      assert.equal(allowed.status, 204);
      await open();
      assert.equal(await fact("Name"), "Ada", "only the write with the header took effect");
    });

    test("profile edit, and the API's message for a bad value", async (step) => {
      await open();
      await page.fill("#set-name input[name=name]", "Ada Lovelace");
      await step("save name", () => submit("#set-name", "PATCH", "/user"));
      await page.locator("#notice", { hasText: "Name saved." }).waitFor();
      assert.equal(await fact("Name"), "Ada Lovelace");

      await page.fill("#set-email input[name=email]", "not-an-address");
      const refused = await step("bad email", () => submit("#set-email", "PATCH", "/user"));
      assert.equal(refused.status(), 400);
      await showsApiMessage("#set-email", refused);
      assert.equal(await fact("Email"), EMAIL);
    });

    test("phone binding; sign-out goes to sign-in; SMS sign-in", async (step) => {
      await open();
      await page.fill("#bind-phone input[name=phone]", PHONE);
      let mark = await server.mark();
      await step("send code", () => page.click("#bind-phone button.quiet"));
      const code = await server.code(PHONE, mark);
      await page.fill("#bind-phone input[name=code]", code);
      const bound = await step("bind", () => submit("#bind-phone", "POST", "/user/phone"));
      assert.equal(bound.status(), 204);
      await page.locator("#notice", { hasText: "Phone bound." }).waitFor();
      const masked = await fact("Phone");
      assert.notEqual(masked, "not bound");
      assert.ok(!masked.includes(PHONE.slice(3, -2)), `the number is masked: ${masked}`);

      await step("sign out", () => signOut());
      assert.equal(await verify(), 401, "the session has ended");

      await page.click('nav.tabs a[href="#/signin/sms"]');
      await page.fill("#login-sms input[name=phone]", PHONE);
      mark = await server.mark();
      await step("send SMS sign-in code", () => page.click("#login-sms button.quiet"));
      await page.fill("#login-sms input[name=code]", await server.code(PHONE, mark));
      const signedIn = await step("SMS sign-in", () => submit("#login-sms", "POST", "/login/sms"));
      assert.equal(signedIn.status(), 204);
      await atAccount();
    });

    test("TOTP binding shows the otpauth URI as a QR code; TOTP sign-in", async (step) => {
      await open();
      await step("set up", () => page.click("#totp-start"));
      const qr = page.locator("#totp img.qr");
      await qr.waitFor();
      const uri = await page.locator("#totp code.uri").textContent();
      assert.match(uri, /^otpauth:\/\/totp\//);
      assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), "the QR image is drawn");
      const expected = qrcode(0, "M");
      expected.addData(uri);
      expected.make();
      assert.equal(await qr.getAttribute("src"), expected.createDataURL(4, 4), "the QR code encodes that URI");

      const now = currentStep();
      await page.fill("#bind-totp input[name=first]", totp(uri, now - 1).code);
      await page.fill("#bind-totp input[name=second]", totp(uri, now).code);
      const bound = await step("bind", () => submit("#bind-totp", "POST", "/user/totp"));
      assert.equal(bound.status(), 204);
      await page.locator("#notice", { hasText: "Authenticator app bound." }).waitFor();
      assert.equal(await fact("Authenticator"), "bound");

      await signOut();
      await page.click('nav.tabs a[href="#/signin/totp"]');
      await page.fill("#login-totp input[name=email]", EMAIL);
      // The binding used step `now`; a sign-in needs a later one, and one step ahead is accepted.
      await page.fill("#login-totp input[name=code]", totp(uri, now + 1).code);
      const signedIn = await step("TOTP sign-in", () => submit("#login-totp", "POST", "/login/totp"));
      assert.equal(signedIn.status(), 204);
      await atAccount();
    });

    test("password change, then sign-in with the new password", async (step) => {
      await open();
      await page.fill("#set-password input[name=old]", "wrong current password");
      await page.fill("#set-password input[name=password]", "a new long passphrase");
      const refused = await step("wrong current password", () => submit("#set-password", "POST", "/user/password"));
      assert.equal(refused.status(), 400);
      await showsApiMessage("#set-password", refused);

      await page.fill("#set-password input[name=old]", password);
      const changed = await step("change", () => submit("#set-password", "POST", "/user/password"));
      assert.equal(changed.status(), 204);
      password = "a new long passphrase";
      await page.locator("#notice", { hasText: "Password changed" }).waitFor();
      await signOut();
      await step("sign in with it", () => signInWithPassword(password));
    });

    test("password reset by mail", async (step) => {
      await signOut();
      await page.click('nav.tabs a[href="#/signin/reset"]');
      await page.fill("#reset input[name=email]", EMAIL);
      const mark = await server.mark();
      await step("mail a code", () => page.click("#reset button.quiet"));
      await page.fill("#reset input[name=code]", await server.code(EMAIL, mark));
      await page.fill("#reset input[name=password]", "the reset passphrase");
      const reset = await step("reset", () => submit("#reset", "POST", "/forget_reset"));
      assert.equal(reset.status(), 204);
      password = "the reset passphrase";
      await atSignIn();
      await step("sign in with it", () => signInWithPassword(password));
    });

    test("the token is refreshed on schedule and the session lives on", async (step) => {
      const before = await tokenCookie();
      await step("open with a 1 s refresh", () => open(page, "refresh=1"));
      await page.waitForFunction(() => window.planxConsole.refresher.count >= 2);
      const last = await page.evaluate(() => window.planxConsole.refresher.last.ok);
      assert.equal(last, true);
      assert.notEqual(await tokenCookie(), before, "a new TOKEN was issued");
      assert.equal(await verify(), 204);
      await step("reload", () => open());
      await atAccount();
    });

    test("two tabs of one console stay signed in while both refresh", async (step) => {
      await open();
      const other = await context.newPage();
      await step("second tab", () => open(other));
      await atAccount(other);
      const refresh = (tab) => tab.evaluate(async () => {
        const outcome = await window.planxConsole.refresher.refresh();
        return outcome.ok || outcome.error.message;
      });
      for (const [i, tab] of [page, other, page, other].entries()) {
        assert.equal(await step(`refresh ${i + 1}`, () => refresh(tab)), true);
      }
      for (const tab of [page, other]) {
        await open(tab);
        await atAccount(tab);
      }
      await other.close();
    });

    test("two tabs refreshing at the same moment both keep their session", async (step) => {
      // Several refresh codes may be pending per session (issue 13): the first
      // tab's code still works after the second tab has asked for its own.
      await open();
      const other = await context.newPage();
      await open(other);
      // Hold the first tab's exchange until the second tab has refreshed.
      let release;
      const held = new Promise((resolve) => (release = resolve));
      let seen;
      const arrived = new Promise((resolve) => (seen = resolve));
      await page.route("**/refresh_token", async (route) => {
        seen();
        await held;
        await route.continue();
      });
      const first = page.evaluate(async () => {
        const outcome = await window.planxConsole.refresher.refresh();
        return outcome.ok || outcome.error.message;
      });
      await arrived;
      const second = await other.evaluate(async () => {
        const outcome = await window.planxConsole.refresher.refresh();
        return outcome.ok || outcome.error.message;
      });
      release();
      const firstOutcome = await first;
      await page.unroute("**/refresh_token");
      await other.close();
      await step("both refreshed", async () => {});
      assert.equal(second, true, "the second tab refreshed");
      assert.equal(firstOutcome, true, `the first tab refreshed with the code it was given (${firstOutcome})`);
    });

    test("a change that needs a recent sign-in asks for the password in place, then goes through", async (step) => {
      await open();
      await atAccount();
      // The API's answer to a stale session (the real window is 10 minutes).
      let stubbed = false;
      await page.route("**/user", async (route) => {
        if (route.request().method() !== "PATCH" || stubbed) return route.continue();
        stubbed = true;
        await route.fulfill({
          status: 401,
          contentType: "application/json",
          body: JSON.stringify({ code: "REAUTHENTICATE", message: "this change needs a recent sign-in" }),
        });
      });
      await page.fill("#set-email input[name=email]", EMAIL);
      const stale = await step("the change", () => submit("#set-email", "PATCH", "/user"));
      assert.equal(stale.status(), 401);
      await page.locator("#reauth").waitFor();
      assert.match(page.url(), /#\/account/, "still signed in");
      await page.fill("#reauth input[name=secret]", "not the password at all");
      const wrong = await step("a wrong password", () => submit("#reauth", "POST", "/user/reauthenticate"));
      await showsApiMessage("#reauth", wrong);
      await page.fill("#reauth input[name=secret]", password);
      const confirmed = await step("confirm", () => submit("#reauth", "POST", "/user/reauthenticate"));
      assert.equal(confirmed.status(), 204);
      await page.locator("#reauth").waitFor({ state: "detached" });
      const again = await step("the change again", () => submit("#set-email", "PATCH", "/user"));
      await page.unroute("**/user");
      assert.equal(again.status(), 204);
    });

    test("the device list shows another browser's sign-in and signs it out at once", async (step) => {
      const second = await launch({ hosts: HOSTS });
      try {
        second.context.setDefaultTimeout(10_000);
        const other = await second.context.newPage();
        await step("sign in from a second browser", () => signInWithPassword(password, other));
        await open();
        await atAccount();
        const others = page.locator("#devices li:not(:has(em))");
        assert.ok((await others.count()) >= 1, "the other browser is listed");
        assert.equal(await page.locator("#devices li:has(em)").count(), 1, "this browser, once");
        assert.equal(await verify(other), 204);
        const [answer] = await Promise.all([
          page.waitForResponse((r) => r.request().method() === "DELETE" && new URL(r.url()).pathname === "/user/sessions"),
          page.click("#end-others"),
        ]);
        assert.equal(answer.status(), 200);
        await step("signed out everywhere else", () => page.locator("#devices li:not(:has(em))").first().waitFor({ state: "detached" }));
        assert.equal(await verify(other), 401, "the other browser's session ended at once");
        assert.equal(await verify(), 204, "this one carries on");
      } finally {
        await second.close();
      }
    });

    test("after sign-out in one tab, the other is sent to sign-in by its next 401", async (step) => {
      await open();
      const other = await context.newPage();
      await open(other);
      await atAccount(other);
      await step("sign out in the first tab", () => signOut(page));
      await other.fill("#set-name input[name=name]", "Still here?");
      const answer = await step("the other tab writes", () => submit("#set-name", "PATCH", "/user", other));
      assert.equal(answer.status(), 401);
      await atSignIn(other);
      assert.match(await other.locator("#notice").textContent(), /sign in again/i);
      await other.close();
    });
  });
}
