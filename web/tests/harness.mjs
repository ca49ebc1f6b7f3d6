// What the browser tests stand on: the API they drive (`planx serve` with its
// outbox, or the Lambda functions behind `cargo lambda watch` on moto), a
// throwaway certificate and an HTTPS reverse proxy for the layouts whose hosts
// need TLS, Debian's Chromium through playwright-core, TOTP codes (RFC 6238),
// and screenshots of every step, written out when a test fails.

import { spawn, execFileSync } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WEB = path.resolve(HERE, "..");
const ROOT = path.resolve(WEB, "..");
const PLANX = process.env.PLANX_BIN || path.join(ROOT, "target/debug/planx");
const ARTIFACTS = process.env.PLANX_BROWSER_ARTIFACTS || path.join(ROOT, "target/browser");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** How long to wait for anything (a server to start, a code to arrive). */
const PATIENCE_MS = 15_000;

function scratch(prefix) {
  return mkdtempSync(path.join(tmpdir(), `planx-${prefix}-`));
}

async function until(what, probe) {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The first six-digit code in a message's text. */
function sixDigits(text, where) {
  const code = text.match(/(?<!\d)\d{6}(?!\d)/);
  if (!code) throw new Error(`no six-digit code in ${where}`);
  return code[0];
}

// ------------------------------------------------------------------ backends

/**
 * The API the tests drive, and how it is started. A backend's `start({ env,
 * corsOrigins, user })` makes the account and resolves to `{ port, mark, code,
 * stop }`: the console is at http://localhost:PORT/console/ beside the API,
 * `await mark()` notes where the sent messages stand, and `code(recipient,
 * mark)` waits for the six-digit code of the first later message to
 * `recipient`.
 *
 * - `planx serve` (the default): one process per layout, any environment.
 * - With PLANX_LAMBDA_URL: the five functions behind `cargo lambda watch` at
 *   that URL, as scripts/e2e runs them on moto (AWS_ENDPOINT_URL, TABLE_NAME).
 *   Their environment is fixed by scripts/e2e, so only the same-origin
 *   layout runs.
 */
export const backend = process.env.PLANX_LAMBDA_URL
  ? { name: "Lambda functions (cargo lambda watch)", start: startLambda, sameOriginOnly: true }
  : { name: "planx serve", start: startPlanx, sameOriginOnly: false };

// ------------------------------------------------------------------ planx

/**
 * `planx serve` on a free port, in memory, with one account, serving web/ at
 * /console/. Its terminal is kept: every SMS and mail is an `[outbox]` line.
 */
export async function startPlanx({ env = {}, corsOrigins = [], user, port: wanted = 0 }) {
  const args = ["serve", "--memory", "--port", String(wanted), "--console", WEB, "--user", `${user.email}:${user.password}`];
  for (const origin of corsOrigins) args.push("--cors-origin", origin);
  const child = spawn(PLANX, args, {
    env: {
      ...process.env,
      KEY: randomBytes(32).toString("base64"),
      // Several codes to one phone within a minute (bind, then sign in).
      CODE_COOLDOWN: "0",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = [];
  const collect = (stream) => {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop();
      lines.push(...parts);
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));
  const port = await until("planx serve to listen", () => {
    if (exited) throw new Error(`planx serve exited (${JSON.stringify(exited)}):\n${lines.join("\n")}`);
    const line = lines.find((l) => l.includes("serving the API on http://127.0.0.1:"));
    return line && Number(line.match(/127\.0\.0\.1:(\d+)/)[1]);
  });
  return {
    port,
    lines,
    /** Where the outbox stands now; pass it to `code` to wait for a newer message. */
    mark: () => lines.length,
    /** The six-digit code of the first message to `recipient` after `mark`. */
    async code(recipient, mark) {
      const line = await until(`a code for ${recipient} in the outbox`, () =>
        lines.slice(mark).find((l) => l.startsWith("[outbox]") && l.includes(` to ${recipient}:`)),
      );
      return sixDigits(line.slice(line.indexOf(`${recipient}:`) + recipient.length + 1), line);
    },
    stop() {
      child.kill("SIGINT");
    },
  };
}

/** A port free on this machine now (for a server whose own URL must be known before it starts). */
export async function freePort() {
  const probe = http.createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// ------------------------------------------------------------------ Lark

/**
 * A stand-in for Lark's open platform on a free port, as the contract suite's
 * (cli/tests/api/lark/standin.rs): an authorize page that approves at once as
 * `person`, the v2 code exchange (single-use codes bound to redirect_uri and
 * the S256 PKCE challenge) and user_info, with Lark's field names.
 */
export async function startLark({ appId, appSecret, person }) {
  const grants = new Map();
  const tokens = new Map();
  let issued = 0;
  const json = (res, status, body) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  const oauthError = (res, code, error) => json(res, code === 20050 ? 500 : 400, { code, error, error_description: error });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://lark");
    if (req.method === "GET" && url.pathname === "/open-apis/authen/v1/authorize") {
      const q = url.searchParams;
      if (q.get("client_id") !== appId || q.get("response_type") !== "code" || q.get("code_challenge_method") !== "S256") {
        return res.writeHead(400, { "content-type": "text/plain" }).end("bad authorize request");
      }
      const code = `stand-in-code-${++issued}`;
      grants.set(code, { redirect: q.get("redirect_uri"), challenge: q.get("code_challenge"), used: false, person: { ...person } });
      const back = new URL(q.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state"));
      return res.writeHead(302, { location: back.href }).end();
    }
    if (req.method === "POST" && url.pathname === "/open-apis/authen/v2/oauth/token") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        let b;
        try {
          b = JSON.parse(body);
        } catch {
          return oauthError(res, 20063, "invalid_request");
        }
        if (b.client_id !== appId || b.client_secret !== appSecret) return oauthError(res, 20002, "invalid_client");
        const grant = grants.get(b.code);
        if (!grant) return oauthError(res, 20003, "invalid_grant");
        if (grant.used) return oauthError(res, 20065, "invalid_grant");
        if (grant.redirect !== b.redirect_uri) return oauthError(res, 20071, "invalid_grant");
        const challenge = createHash("sha256").update(b.code_verifier || "").digest("base64url");
        if (challenge !== grant.challenge) return oauthError(res, 20049, "invalid_grant");
        grant.used = true;
        const token = `u-stand-in-${++issued}`;
        tokens.set(token, grant.person);
        json(res, 200, { code: 0, access_token: token, expires_in: 7200, token_type: "Bearer", scope: "" });
      });
      return;
    }
    if (req.method === "GET" && url.pathname === "/open-apis/authen/v1/user_info") {
      const data = tokens.get((req.headers.authorization || "").replace(/^Bearer /, ""));
      if (!data) return json(res, 200, { code: 20005, msg: "The user access token passed is invalid. Please check the value" });
      return json(res, 200, { code: 0, msg: "success", data });
    }
    res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    /** The API's settings for this stand-in and `redirect` (its GET /lark) and `consoleUrl`. */
    env: (redirect, consoleUrl) => ({
      LARK_APP_ID: appId,
      LARK_APP_SECRET: appSecret,
      LARK_REDIRECT: redirect,
      CONSOLE_URL: consoleUrl,
      LARK_API_URL: base,
      LARK_AUTH_URL: `${base}/open-apis/authen/v1/authorize`,
    }),
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
}

// ------------------------------------------------------------------ Lambda

/**
 * The five functions behind `cargo lambda watch` at PLANX_LAMBDA_URL, on moto
 * (AWS_ENDPOINT_URL): the account is made in their table (TABLE_NAME) with
 * `planx user add --aws`, and a server on a free port serves web/ at /console/
 * and forwards every other request to watch, so the console and the API share
 * one origin as with `planx serve --console`. Codes are read from the SMS and
 * mail moto holds (`GET /moto-api/data.json`).
 */
async function startLambda({ env = {}, corsOrigins = [], user }) {
  if (Object.keys(env).length || corsOrigins.length) {
    throw new Error("the Lambda functions run with scripts/e2e's environment: the same-origin layout only");
  }
  const api = new URL(process.env.PLANX_LAMBDA_URL);
  const moto = process.env.AWS_ENDPOINT_URL;
  if (!moto) throw new Error("PLANX_LAMBDA_URL needs AWS_ENDPOINT_URL: the moto the functions use");
  try {
    execFileSync(PLANX, ["user", "add", "--aws", "--email", user.email], {
      env: { ...process.env, PLANX_PASSWORD: user.password },
      encoding: "utf8",
      stdio: "pipe",
    });
  } catch (error) {
    throw new Error(`planx user add --aws failed: ${error.stderr || error.message}`);
  }
  const server = http.createServer((req, res) => {
    if (!serveConsole(req, res)) forward(req, res, { host: api.hostname, port: api.port });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    /** How many SMS and mails moto holds now. */
    async mark() {
      const { sms, mail } = await sentMessages(moto);
      return { sms: sms.length, mail: mail.length };
    },
    /** The six-digit code of the first SMS or mail to `recipient` after `mark`. */
    async code(recipient, mark) {
      const message = await until(`a code for ${recipient} in moto`, async () => {
        const { sms, mail } = await sentMessages(moto);
        return [...sms.slice(mark.sms), ...mail.slice(mark.mail)].find((m) => m.to.includes(recipient));
      });
      return sixDigits(message.text, `the message to ${recipient}: ${message.text}`);
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The SMS (SNS) and mails (SES) moto has sent, oldest first, as `{ to, text }`. */
async function sentMessages(moto) {
  const answer = await fetch(`${moto}/moto-api/data.json`);
  if (!answer.ok) throw new Error(`GET ${moto}/moto-api/data.json: ${answer.status}`);
  const data = await answer.json();
  return {
    sms: (data.sns?.SMS ?? []).map((m) => ({ to: [m.phone_number], text: m.message })),
    mail: (data.ses?.Message ?? []).map((m) => ({
      to: m.destinations?.ToAddresses ?? [],
      text: m.body.replace(/<[^>]+>/g, " "),
    })),
  };
}

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/**
 * web/ at /console/ (index.html for a folder), as `planx serve --console`
 * serves it. Answers and returns true for /console and /console/...; any
 * other path is left to the caller.
 */
function serveConsole(req, res) {
  const { pathname } = new URL(req.url, "http://localhost");
  if (pathname === "/console") {
    res.writeHead(308, { location: "/console/" }).end();
    return true;
  }
  if (!pathname.startsWith("/console/")) return false;
  let file = path.join(WEB, decodeURIComponent(pathname.slice("/console/".length)));
  try {
    if (file !== WEB && !file.startsWith(WEB + path.sep)) throw new Error("outside web/");
    if (statSync(file).isDirectory()) file = path.join(file, "index.html");
    const body = readFileSync(file);
    const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
    res.writeHead(200, { "content-type": type, "content-length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }
  return true;
}

/** Sends `req` on to an HTTP server unchanged, and its answer back. */
function forward(req, res, { host, port }) {
  const upstream = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.rawHeaders);
    answer.pipe(res);
  });
  upstream.on("error", (error) => {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`proxy: ${error.message}`);
  });
  req.pipe(upstream);
}

// ------------------------------------------------------------------ TLS

/** A self-signed certificate for the test hosts, made now, for one run. */
export function makeCertificate(hosts) {
  const dir = scratch("tls");
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "1", "-subj", "/CN=planx browser tests", "-keyout", key, "-out", cert,
      "-addext", `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(",")}`,
    ],
    { stdio: "ignore" },
  );
  const pair = { key: readFileSync(key), cert: readFileSync(cert) };
  rmSync(dir, { recursive: true, force: true });
  return pair;
}

/**
 * An HTTPS reverse proxy on a free port, forwarding every host's requests to
 * `target()` (planx serve) unchanged: TLS in front, as the gateway and a CDN are.
 */
export async function startProxy(tls, target) {
  const server = https.createServer(tls, (req, res) => forward(req, res, { host: "127.0.0.1", port: target() }));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: server.address().port, stop: () => server.close() };
}

// ------------------------------------------------------------------ Chromium

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Chromium with the test hosts resolved to this machine, in a fresh context
 * (an incognito-like profile). Chromium refuses third-party cookies there, and
 * this build (Debian's 156) refuses them in a default persistent profile too
 * (CDP blockedReasons "UserPreferences"), so a console on another site works
 * only because planx makes SameSite=None cookies Partitioned (CHIPS). The
 * cross-site layout proves that, with no browser setting changed.
 */
export async function launch({ hosts = [] } = {}) {
  const args = [...CHROMIUM_ARGS, "--ignore-certificate-errors"];
  if (hosts.length) {
    args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(", ")}`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const context = await browser.newContext({ viewport: { width: 960, height: 720 }, ignoreHTTPSErrors: true });
  return { context, close: () => browser.close() };
}

// ------------------------------------------------------------------ TOTP

function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const value = alphabet.indexOf(c);
    if (value < 0) throw new Error(`not base32: ${text}`);
    bits += value.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 (HOTP of RFC 4226 over 30 s steps) from an otpauth URI. */
export function totp(uri, step) {
  const params = new URL(uri).searchParams;
  const period = Number(params.get("period") || 30);
  const digits = Number(params.get("digits") || 6);
  if ((params.get("algorithm") || "SHA1").toUpperCase() !== "SHA1") throw new Error(`unexpected algorithm in ${uri}`);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(params.get("secret"))).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return { code: String(value).padStart(digits, "0"), period };
}

export const currentStep = (period = 30) => Math.floor(Date.now() / 1000 / period);

// ------------------------------------------------------------------ steps

/**
 * Runs a test's steps, taking a screenshot of every open page after each; when
 * the test fails they are written to target/browser/<suite>/<test>/.
 */
export async function withSteps(context, suite, name, body) {
  const shots = [];
  const step = async (label, action) => {
    const result = await action();
    for (const [i, page] of context.pages().entries()) {
      shots.push({ label: `${label}${i ? `-tab${i + 1}` : ""}`, png: await page.screenshot().catch(() => null) });
    }
    return result;
  };
  try {
    return await body(step);
  } catch (error) {
    const dir = path.join(ARTIFACTS, slug(suite), slug(name));
    mkdirSync(dir, { recursive: true });
    for (const [i, page] of context.pages().entries()) {
      shots.push({ label: `failure${i ? `-tab${i + 1}` : ""}`, png: await page.screenshot().catch(() => null) });
    }
    shots.forEach(({ label, png }, i) => png && writeFileSync(path.join(dir, `${String(i + 1).padStart(2, "0")}-${slug(label)}.png`), png));
    error.message += `\n(screenshots of each step: ${dir})`;
    throw error;
  }
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}
