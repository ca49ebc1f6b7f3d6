// The reference console: sign-in (password, SMS code, authenticator app,
// Lark, password reset by mail) and the account page (profile, password,
// phone, authenticator, Lark), through the API only (api.js). Routes live in
// the hash: #/signin, #/signin/sms, #/signin/totp, #/signin/reset, #/account,
// and #/authorized, #/unauthorize?error=CODE where the API's Lark callback
// sends the browser (CONSOLE_URL ending in #/).

import config from "./config.js";
import { Api, ApiError } from "./api.js";
import { Refresher } from "./refresh.js";

const params = new URLSearchParams(location.search);
const api = new Api(params.get("api") || config.api || location.origin);
const refresher = new Refresher(api, Number(params.get("refresh")) || config.refreshSeconds);
api.onUnauthorized = unauthorized;
// For the browser tests and the devtools console.
window.planxConsole = { api, refresher };

// ------------------------------------------------------------------ DOM bits

const $ = (selector) => document.querySelector(selector);

/** An element: `h("a", {href: "#"}, "text", child)`; text is never parsed as HTML. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false && value != null) el.setAttribute(key, value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

function notice(text, kind = "ok") {
  const el = $("#notice");
  el.textContent = text;
  el.className = kind;
  el.hidden = !text;
}

function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  return error.message + wait;
}

function field(label, name, attrs = {}) {
  return h("label", {}, h("span", {}, label), h("input", { name, ...attrs }));
}

/** Runs `action` for a button: disabled meanwhile, the API's message in `slot`. */
async function guarded(button, slot, action) {
  slot.hidden = true;
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    slot.textContent = describe(error);
    slot.hidden = false;
  } finally {
    button.disabled = false;
  }
}

/**
 * A form that calls `action(values)` on submit. `buttons(values, slot)` may
 * add more buttons (such as "Send code") that report into the same slot.
 */
function form(id, { title, fields, submit, action, buttons = () => [], note }) {
  const slot = h("p", { class: "error", role: "alert", hidden: true });
  const values = () => Object.fromEntries(new FormData(el));
  const button = h("button", { type: "submit" }, submit);
  const el = h(
    "form",
    { id, novalidate: true },
    title && h("h2", {}, title),
    note && h("p", { class: "muted" }, note),
    fields,
    slot,
    h("div", { class: "actions" }, buttons(values, slot), button),
  );
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(button, slot, () => action(values()));
  });
  return el;
}

function sendCodeButton(label, slot, send) {
  const button = h("button", { type: "button", class: "quiet" }, label);
  button.addEventListener("click", () => guarded(button, slot, send));
  return button;
}

function show(...children) {
  $("#view").replaceChildren(...children);
}

// ------------------------------------------------------------------ session

/** Where the console goes, even when it is already there. */
function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

/**
 * After a write: the account view again, with what the API holds now, and
 * then the notice, so a notice never sits above the old values. Not when the
 * re-render found the session gone (a 401 has sent the console to sign-in).
 */
async function shown(message) {
  await render();
  if (location.hash === "#/account") notice(message);
}

function signedIn() {
  refresher.start();
  notice("");
  go("#/account");
}

function signedOut(message, kind) {
  refresher.stop();
  $("#who").textContent = "";
  $("#logout").hidden = true;
  notice(message, kind);
  go("#/signin");
}

/**
 * Any 401 the caller did not expect: the session is gone, so sign in again;
 * unless it only asks the same session to confirm who it is (a sensitive
 * change on an old sign-in), which the confirm form does in place.
 */
function unauthorized(error) {
  if (error.code === "REAUTHENTICATE") confirmIdentity();
  else signedOut(`${describe(error)} Please sign in again.`, "warn");
}

/** `POST /user/reauthenticate` with the password, or a six-digit authenticator code. */
function confirmIdentity() {
  if ($("#reauth")) return;
  const el = form("reauth", {
    title: "Confirm it's you",
    note: "This change needs a recent sign-in. Enter your password or a code from your authenticator app, then make the change again.",
    fields: [field("Password or authenticator code", "secret", { type: "password", autocomplete: "current-password" })],
    submit: "Confirm",
    action: async ({ secret }) => {
      // A password has 8 or more characters, so six digits are a code.
      const body = /^[0-9]{6}$/.test(secret) ? { code: secret } : { password: secret };
      await api.post("/user/reauthenticate", body);
      el.remove();
      notice("Confirmed. Make the change again.");
    },
  });
  $("#view").prepend(el);
  el.querySelector("input").focus();
}

async function logout() {
  try {
    await api.post("/logout");
  } catch (error) {
    if (error.status !== 401) {
      notice(describe(error), "error");
      return;
    }
  }
  signedOut("You are signed out.", "ok");
}

// ------------------------------------------------------------------ Lark

/**
 * Where a Lark sign-in or link begins: the collaboration option's `url` (the
 * API's GET /lark/authorize; empty when the API has no Lark app), asked once.
 */
let larkStart;
function larkUrl() {
  larkStart ??= api
    .get("/options", { type: "collaboration" })
    .then((options) => options.url || "")
    .catch(() => "");
  return larkStart;
}

/**
 * A link to Lark by way of the API, with the weplanx console's intent in
 * `state` (the API binds its own nonce to this browser); what was asked is
 * kept for the page the callback comes back to.
 */
function larkLink(url, id, label, intent) {
  const state = JSON.stringify(intent === "link" ? { action: "link" } : {});
  const href = `${url}?state=${encodeURIComponent(state)}`;
  const link = h("a", { id, class: "button", href }, label);
  link.addEventListener("click", () => sessionStorage.setItem("planx.lark", intent));
  return link;
}

/** What the console says for the codes the callback's failure route carries. */
const LARK_FAILURES = {
  LARK_STATE_INVALID: "That Lark sign-in was not started here, or has expired. Please try again.",
  LARK_DENIED: "The Lark sign-in was cancelled.",
  LARK_REFUSED: "Lark did not confirm the sign-in. Please try again.",
  LARK_UNAVAILABLE: "Lark cannot be reached right now. Please try again shortly.",
  LARK_NOT_LINKED: "No account is linked to that Lark account. Sign in another way, then link it on your account page.",
  LARK_TAKEN: "That Lark account is already linked to another account.",
  ACCOUNT_DISABLED: "This account is disabled.",
  AUTH_MANY_INCORRECT: "Too many failed sign-ins.",
  REAUTHENTICATE: "Linking needs a recent sign-in: sign in again, then link.",
  UNAUTHENTICATED: "Sign in first, then link your Lark account.",
  SESSION_ENDED: "Your session ended. Sign in again, then link your Lark account.",
};

/**
 * The notice for the route the Lark callback sent the browser to (only known
 * codes are shown, never text from the address), or null for another route.
 */
function larkOutcome(hash) {
  const intent = sessionStorage.getItem("planx.lark");
  if (hash.startsWith("#/authorized")) {
    sessionStorage.removeItem("planx.lark");
    return [intent === "link" ? "Lark account linked." : "Signed in with Lark.", "ok"];
  }
  if (!hash.startsWith("#/unauthorize")) return null;
  sessionStorage.removeItem("planx.lark");
  const query = new URLSearchParams(hash.split("?")[1] || "");
  const code = query.get("error") || "";
  const wait = Number(query.get("retry_after")) || 0;
  const text = LARK_FAILURES[code] || "The Lark sign-in failed. Please try again.";
  return [wait ? `${text} Try again in ${wait} s.` : text, "warn"];
}

function larkCard(user, url) {
  const card = h("section", { class: "card", id: "lark" }, h("h2", {}, "Lark"));
  const lark = user.lark;
  if (lark) {
    const avatar = /^https?:\/\//.test(lark.avatar_thumb) && h("img", { class: "avatar small", src: lark.avatar_thumb, alt: "" });
    const name = [lark.name, lark.en_name && lark.en_name !== lark.name ? `(${lark.en_name})` : ""].join(" ").trim();
    card.append(
      h("p", { class: "linked" }, avatar, "Linked: ", h("strong", { "data-field": "lark-name" }, name || lark.open_id), " ",
        removeButton("unlink-lark", "Unlink", "/user/lark", "Lark account unlinked.")),
    );
  } else if (url) {
    card.append(h("p", { class: "muted" }, "Link a Lark account to sign in with it."), larkLink(url, "link-lark", "Link Lark account", "link"));
  } else {
    card.append(h("p", { class: "muted" }, "Lark sign-in is not set up on this API."));
  }
  return card;
}

// ------------------------------------------------------------------ sign-in

const TABS = [
  ["", "Password"],
  ["sms", "SMS code"],
  ["totp", "Authenticator"],
  ["reset", "Forgot password"],
];

function signinForm(tab) {
  switch (tab) {
    case "sms":
      return form("login-sms", {
        fields: [
          field("Phone", "phone", { type: "tel", autocomplete: "tel", placeholder: "+14155550123" }),
          field("Code", "code", { inputmode: "numeric", autocomplete: "one-time-code" }),
        ],
        buttons: (values, slot) =>
          sendCodeButton("Send code", slot, async () => {
            await api.get("/login/sms", { phone: values().phone });
            notice("If an account has this phone, a code is on its way.");
          }),
        submit: "Sign in",
        action: async ({ phone, code }) => {
          await api.post("/login/sms", { phone, code });
          signedIn();
        },
      });
    case "totp":
      return form("login-totp", {
        fields: [
          field("Email", "email", { type: "email", autocomplete: "username" }),
          field("Code from your authenticator app", "code", {
            inputmode: "numeric",
            autocomplete: "one-time-code",
          }),
        ],
        submit: "Sign in",
        action: async ({ email, code }) => {
          await api.post("/login/totp", { email, code });
          signedIn();
        },
      });
    case "reset":
      return form("reset", {
        fields: [
          field("Email", "email", { type: "email", autocomplete: "username" }),
          field("Code from the mail", "code", { inputmode: "numeric" }),
          field("New password", "password", { type: "password", autocomplete: "new-password" }),
        ],
        buttons: (values, slot) =>
          sendCodeButton("Mail me a code", slot, async () => {
            await api.get("/forget_code", { email: values().email });
            notice("If an account has this address, a code is on its way.");
          }),
        submit: "Set password",
        action: async (body) => {
          await api.post("/forget_reset", body);
          notice("Your password is set; every device was signed out. Sign in with it.");
          go("#/signin");
        },
      });
    default:
      return form("login-password", {
        fields: [
          field("Email", "email", { type: "email", autocomplete: "username" }),
          field("Password", "password", { type: "password", autocomplete: "current-password" }),
        ],
        submit: "Sign in",
        action: async ({ email, password }) => {
          await api.post("/login", { email, password });
          signedIn();
        },
      });
  }
}

async function signinView(tab) {
  const tabs = h(
    "nav",
    { class: "tabs" },
    TABS.map(([t, label]) =>
      h("a", { href: t ? `#/signin/${t}` : "#/signin", "aria-current": t === tab && "page" }, label),
    ),
  );
  const url = await larkUrl();
  const lark = url && h("p", { class: "alternative" }, larkLink(url, "lark-signin", "Sign in with Lark", "signin"));
  return h("section", { class: "card narrow" }, h("h1", {}, "Sign in"), tabs, signinForm(tab), lark);
}

// ------------------------------------------------------------------ account

function when(value) {
  return value ? new Date(value).toLocaleString() : "—";
}

/** The last sign-in: `{timestamp, metadata: {client_ip, source}, user_agent}`. */
function lastSignIn(history) {
  if (!history) return "—";
  const { client_ip, source } = history.metadata ?? {};
  return `${when(history.timestamp)} by ${source} from ${client_ip}`;
}

function profileCard(user) {
  const avatar = /^https?:\/\//.test(user.avatar)
    ? h("img", { class: "avatar", src: user.avatar, alt: "" })
    : h("div", { class: "avatar" }, (user.name || user.email).slice(0, 1).toUpperCase());
  const row = (term, value) => [h("dt", {}, term), h("dd", { "data-field": term }, value)];
  return h(
    "section",
    { class: "card", id: "profile" },
    h("div", { class: "headline" }, avatar, h("div", {}, h("h1", {}, user.name || user.email), h("p", { class: "muted" }, user.email))),
    h(
      "dl",
      { class: "facts" },
      row("Email", user.email),
      row("Name", user.name || "—"),
      row("Phone", user.phone || "not bound"),
      row("Authenticator", user.totp ? "bound" : "not bound"),
      row("Sign-ins", String(user.sessions)),
      row("Last sign-in", lastSignIn(user.history)),
      row("Account since", when(user.create_time)),
    ),
  );
}

function editCard(user) {
  const setter = (key, label, attrs) =>
    form(`set-${key}`, {
      fields: [field(label, key, { value: user[key] || "", ...attrs })],
      submit: "Save",
      action: async (values) => {
        await api.patch("/user", { key, [key]: values[key] });
        await shown(`${label} saved.`);
      },
    });
  return h(
    "section",
    { class: "card inline-forms" },
    h("h2", {}, "Profile"),
    setter("name", "Name", { autocomplete: "name" }),
    setter("email", "Email", { type: "email", autocomplete: "email" }),
    setter("avatar", "Avatar URL", { type: "url" }),
  );
}

function passwordCard() {
  return h(
    "section",
    { class: "card" },
    form("set-password", {
      title: "Password",
      note: "Changing it signs out your other devices.",
      fields: [
        field("Current password", "old", { type: "password", autocomplete: "current-password" }),
        field("New password", "password", { type: "password", autocomplete: "new-password" }),
      ],
      submit: "Change password",
      action: async (body) => {
        await api.post("/user/password", body);
        await shown("Password changed; your other devices are signed out.");
      },
    }),
  );
}

function removeButton(id, label, path, done) {
  const slot = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "button", class: "danger", id }, label);
  button.addEventListener("click", () =>
    guarded(button, slot, async () => {
      await api.delete(path);
      await shown(done);
    }),
  );
  return [button, slot];
}

function phoneCard(user) {
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Phone"),
    user.phone
      ? h("p", {}, "Bound: ", h("strong", {}, user.phone), " ", removeButton("remove-phone", "Remove", "/user/phone", "Phone removed."))
      : h("p", { class: "muted" }, "No phone is bound. Bind one to sign in with an SMS code."),
    form("bind-phone", {
      fields: [
        field(user.phone ? "New phone" : "Phone", "phone", { type: "tel", placeholder: "+14155550123" }),
        field("Code", "code", { inputmode: "numeric", autocomplete: "one-time-code" }),
      ],
      buttons: (values, slot) =>
        sendCodeButton("Send code", slot, async () => {
          await api.get("/user/phone_code", { phone: values().phone });
          notice("A code is on its way to that phone.");
        }),
      submit: "Bind phone",
      action: async (body) => {
        await api.post("/user/phone", body);
        await shown("Phone bound.");
      },
    }),
  );
}

/** The otpauth URI as a QR code, drawn by the one library this console uses. */
async function qrImage(uri) {
  try {
    const { default: qrcode } = await import("qrcode-generator");
    const qr = qrcode(0, "M");
    qr.addData(uri);
    qr.make();
    return h("img", { class: "qr", src: qr.createDataURL(4, 4), alt: "QR code to scan with an authenticator app" });
  } catch {
    return h("p", { class: "error" }, "The QR code library is missing (run `npm ci` in web/); enter the key below by hand.");
  }
}

function totpCard(user) {
  const card = h("section", { class: "card", id: "totp" }, h("h2", {}, "Authenticator app"));
  if (user.totp) {
    card.append(h("p", {}, "An authenticator app is bound. ", removeButton("remove-totp", "Remove", "/user/totp", "Authenticator removed.")));
    return card;
  }
  const slot = h("p", { class: "error", role: "alert", hidden: true });
  const start = h("button", { type: "button", id: "totp-start" }, "Set up");
  start.addEventListener("click", () =>
    guarded(start, slot, async () => {
      const { totp: uri } = await api.get("/user/totp");
      const secret = new URL(uri).searchParams.get("secret") || "";
      start.replaceWith(
        h(
          "div",
          { class: "totp-setup" },
          await qrImage(uri),
          h(
            "div",
            {},
            h("p", {}, "Scan this with your authenticator app, then enter two codes in a row: the one it shows now, and the next one."),
            h("details", {}, h("summary", {}, "Can't scan it?"), h("p", {}, "Key: ", h("code", { class: "secret" }, secret)), h("code", { class: "uri" }, uri)),
            form("bind-totp", {
              fields: [
                field("Code now", "first", { inputmode: "numeric", autocomplete: "one-time-code" }),
                field("Next code", "second", { inputmode: "numeric", autocomplete: "one-time-code" }),
              ],
              submit: "Bind app",
              action: async ({ first, second }) => {
                await api.post("/user/totp", { totp: uri, tss: [first, second] });
                await shown("Authenticator app bound.");
              },
            }),
          ),
        ),
      );
    }),
  );
  card.append(h("p", { class: "muted" }, "Sign in with a code from an app such as a password manager."), start, slot);
  return card;
}

const METHODS = { password: "password", sms: "SMS code", totp: "authenticator", lark: "Lark" };

/** The signed-in devices (`GET /user/sessions`), each but this one with its own sign-out. */
function devicesCard({ sessions, total }) {
  const item = (s) =>
    h(
      "li",
      { "data-session": s.id },
      h("strong", {}, s.user_agent || "Unnamed browser"),
      h(
        "span",
        { class: "muted" },
        ` ${s.ip} · signed in ${when(s.signed_in)}${s.method ? ` by ${METHODS[s.method] || s.method}` : ""} · last seen ${when(s.last_seen)}`,
      ),
      s.current
        ? h("em", {}, " (this browser)")
        : removeButton(`end-${s.id}`, "Sign out", `/user/sessions/${encodeURIComponent(s.id)}`, "That device is signed out."),
    );
  const others = sessions.filter((s) => !s.current).length;
  const slot = h("p", { class: "error", role: "alert", hidden: true });
  const endOthers = h("button", { type: "button", class: "danger", id: "end-others", disabled: others === 0 }, "Sign out everywhere else");
  endOthers.addEventListener("click", () =>
    guarded(endOthers, slot, async () => {
      const { ended } = await api.delete("/user/sessions");
      await shown(`${ended} other device${ended === 1 ? " is" : "s are"} signed out.`);
    }),
  );
  return h(
    "section",
    { class: "card", id: "devices" },
    h("h2", {}, "Devices"),
    h("p", { class: "muted" }, `${total} signed-in device${total === 1 ? "" : "s"}${total > sessions.length ? ` (the newest ${sessions.length} shown)` : ""}.`),
    h("ul", { class: "devices" }, sessions.map(item)),
    endOthers,
    slot,
  );
}

async function accountView() {
  const [user, devices] = await Promise.all([api.get("/user"), api.get("/user/sessions")]);
  $("#who").textContent = user.email;
  $("#logout").hidden = false;
  const lark = larkCard(user, await larkUrl());
  return h(
    "div",
    { class: "stack" },
    profileCard(user),
    editCard(user),
    passwordCard(),
    phoneCard(user),
    totpCard(user),
    lark,
    devicesCard(devices),
  );
}

// ------------------------------------------------------------------ routing

let renders = 0;

async function render() {
  const ticket = ++renders;
  const [, route = "signin", tab = ""] = location.hash.split("/");
  let view;
  try {
    view = route === "account" ? await accountView() : await signinView(tab);
  } catch (error) {
    if (error.status === 401) return; // unauthorized() has moved on already
    view = h("section", { class: "card" }, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, describe(error)));
  }
  if (ticket === renders) show(view);
}

async function start() {
  $("#api-base").textContent = api.base;
  $("#logout").addEventListener("click", logout);
  window.addEventListener("hashchange", render);
  // Back from Lark: what happened, shown once the console has moved on.
  const outcome = larkOutcome(location.hash);
  try {
    await api.ping(); // the XSRF cookies (and the token in a header)
    await api.request("GET", "/verify", { quiet401: true });
  } catch (error) {
    if (error.status === 401) {
      go(location.hash.startsWith("#/signin") ? location.hash : "#/signin");
      if (outcome) notice(...outcome);
    } else {
      show(h("section", { class: "card" }, h("h1", {}, "The API is out of reach"), h("p", { class: "error" }, describe(error))));
    }
    return;
  }
  refresher.start();
  go("#/account");
  if (outcome) notice(...outcome);
}

start();
