#!/usr/bin/env python3
"""The end-to-end flow of scripts/e2e: the seed's operations over HTTP through
`cargo lambda watch`'s router to the five function binaries, on DynamoDB, SNS
and SES emulated by moto. Standard library only.

    e2e.py API_URL MOTO_URL EMAIL PASSWORD [LOG_DIR]

Prints one line per step; the first failed check stops the flow with the step's
name, what was expected and the response. With LOG_DIR (where NAME.log holds
function NAME's JSON logs), a last step checks that each function logged one
request line for each request the router should have sent it, and no other.
"""

import base64
import hashlib
import hmac
import http.client
import json
import re
import struct
import sys
import time
import urllib.parse

# Not the browser flow's phone (web/tests/), which binds it to another account
# against the same functions after this flow (scripts/e2e); a phone is unique.
PHONE = "+14155550142"
MASKED_PHONE = "+*******0142"
NEW_PASSWORD = "a brand new long passphrase"


# Which function serves a path: the router in Cargo.toml, template.yaml's routes.
FUNCTIONS = [
    ("ping", re.compile(r"/$")),
    ("session", re.compile(r"/(login(/sms|/totp)?|verify|refresh_code|refresh_token|logout|lark(/authorize)?)$")),
    ("recovery", re.compile(r"/forget_(code|reset)$")),
    ("user", re.compile(r"/user(/[^/]+|/sessions/[^/]+)?$")),
    ("options", re.compile(r"/options$")),
]

# Every path and method of the seed (and DELETE on each static /user/* path,
# which axum and the router send to the user function, not to /user/{key}),
# and the device routes beyond it.
SEED_ROUTES = [
    ("GET", "/"),
    ("POST", "/login"),
    ("GET", "/login/sms"),
    ("POST", "/login/sms"),
    ("POST", "/login/totp"),
    ("GET", "/forget_code"),
    ("POST", "/forget_reset"),
    ("GET", "/verify"),
    ("GET", "/refresh_code"),
    ("GET", "/refresh_token"),
    ("POST", "/refresh_token"),
    ("POST", "/logout"),
    ("GET", "/user"),
    ("PATCH", "/user"),
    ("POST", "/user/password"),
    ("POST", "/user/reauthenticate"),
    ("GET", "/user/phone_code"),
    ("POST", "/user/phone"),
    ("GET", "/user/totp"),
    ("POST", "/user/totp"),
    ("DELETE", "/user/lark"),
    ("DELETE", "/user/phone"),
    ("DELETE", "/user/totp"),
    ("DELETE", "/user/password"),
    ("DELETE", "/user/reauthenticate"),
    ("DELETE", "/user/phone_code"),
    ("GET", "/user/sessions"),
    ("DELETE", "/user/sessions"),
    ("DELETE", "/user/sessions/006b49d200AAAAAAAAAAAAAAAAAAAAAA"),
    ("GET", "/options"),
    # Issue 15: Lark (off here, no app configured: 404 LARK_DISABLED).
    ("GET", "/lark/authorize"),
    ("GET", "/lark"),
]

# Every request sent: (method, path without the query, status).
SENT = []


class Failed(Exception):
    pass


def function_of(path):
    return next((name for name, pattern in FUNCTIONS if pattern.match(path)), None)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")
        self.set_cookies = headers.get_all("Set-Cookie") or []

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            raise Failed(f"body is not JSON: {self.text!r}")


class Client:
    """One browser: its own cookie jar (kept by hand, so `Secure` cookies work
    over plain HTTP as they do for a browser on localhost) and XSRF header."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.jar = {}

    def request(self, method, path, body=None):
        headers = {"Accept": "application/json", "User-Agent": "planx-e2e"}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if method not in ("GET", "HEAD"):
            if "XSRF-TOKEN" in self.jar:
                headers["X-XSRF-TOKEN"] = self.jar["XSRF-TOKEN"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            resp = Response(r.status, r.headers, r.read())
        finally:
            conn.close()
        SENT.append((method, path.split("?", 1)[0], resp.status))
        for c in resp.set_cookies:
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            attrs = [a.strip().lower() for a in rest.split(";")[1:]]
            if "max-age=0" in attrs or value == "":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return resp

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None):
        return self.request("POST", path, {} if body is None else body)

    def patch(self, path, body):
        return self.request("PATCH", path, body)


def expect(resp, status, what=""):
    if resp.status != status:
        raise Failed(f"expected {status}{' ' + what if what else ''}, got {resp.status}: {resp.text[:500]!r}")
    return resp


def check(cond, message):
    if not cond:
        raise Failed(message)


def totp_code(secret_b32, step):
    """RFC 6238 (SHA-1, 6 digits, 30 s): the HOTP of the step."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def moto_data(moto):
    url = urllib.parse.urlsplit(moto)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", "/moto-api/data.json")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def six_digits(text, what):
    codes = re.findall(r"(?<!\d)\d{6}(?!\d)", text)
    check(codes, f"no 6-digit code in the {what}: {text!r}")
    return codes[0]


def last_sms(moto, phone, seen):
    sms = [s for s in moto_data(moto)["sns"].get("SMS", []) if s.get("phone_number") == phone]
    check(len(sms) > seen, f"moto holds {len(sms)} SMS to {phone}, expected a new one")
    return six_digits(sms[-1]["message"], "SMS")


def last_mail(moto, to, seen):
    mails = [
        m
        for m in moto_data(moto)["ses"].get("Message", [])
        if to in (m.get("destinations") or {}).get("ToAddresses", [])
    ]
    check(len(mails) > seen, f"moto holds {len(mails)} mails to {to}, expected a new one")
    body = re.sub(r"<[^>]+>", " ", mails[-1]["body"])
    return six_digits(body, "mail")


def count_sms(moto, phone):
    return len([s for s in moto_data(moto)["sns"].get("SMS", []) if s.get("phone_number") == phone])


def count_mail(moto, to):
    return len(
        [m for m in moto_data(moto)["ses"].get("Message", []) if to in (m.get("destinations") or {}).get("ToAddresses", [])]
    )


def request_lines(log):
    """(method, route, status) of each request line in a function's JSON log."""
    out = []
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                continue
            if fields.get("message") == "request":
                out.append((fields.get("method"), fields.get("route"), fields.get("status")))
    return out


def route_matches(route, path):
    """Whether a logged route (a path, or a template like /user/{key}) is `path`."""
    pattern = re.sub(r"\\\{[^/]*\\\}", "[^/]+", re.escape(route))
    return re.fullmatch(pattern, path) is not None


def check_logs(log_dir):
    for name, _ in FUNCTIONS:
        expected = [(m, p, s) for m, p, s in SENT if function_of(p) == name]
        logged = request_lines(f"{log_dir}/{name}.log")
        unmatched = []
        for m, p, s in expected:
            hit = next((x for x in logged if x[0] == m and x[2] == s and route_matches(x[1] or "", p)), None)
            if hit is None:
                unmatched.append((m, p, s))
            else:
                logged.remove(hit)
        check(not unmatched, f"{name} logged no request line for {unmatched}")
        check(not logged, f"{name} logged requests it should not have served: {logged}")
    return f"{len(SENT)} requests, each logged once by its function"


def flow(api, moto, email, password, log_dir=None):
    a = Client(api)  # the browser that signs in first
    ctx = {"passed": 0}

    def step(name, fn):
        start = time.monotonic()
        try:
            note = fn()
        except Exception as e:  # a failed check, a connection error, a timeout...
            detail = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
            print(f"FAIL  {name}: {detail}", flush=True)
            print(f"e2e: {ctx['passed']} passed, 1 failed", flush=True)
            raise SystemExit(1)
        ms = (time.monotonic() - start) * 1000
        ctx["passed"] += 1
        print(f"ok    {name:<44} {ms:6.0f} ms{'  ' + note if note else ''}", flush=True)

    def ping():
        r = expect(a.get("/"), 200)
        body = r.json()
        check(body.get("name") == "ping", f"name {body.get('name')!r}, expected the function's name 'ping'")
        check(body.get("ip") == "127.0.0.1", f"ip {body.get('ip')!r}, expected the gateway's sourceIp")
        check("values" in body, "MODE=debug answers values")
        check({"XSRF-SALT", "XSRF-TOKEN"} <= a.jar.keys(), f"XSRF cookies missing: {r.set_cookies}")
        salt = next(c for c in r.set_cookies if c.startswith("XSRF-SALT="))
        check("HttpOnly" in salt and "Secure" in salt, f"XSRF-SALT attributes: {salt}")
        return "ping: XSRF-SALT, XSRF-TOKEN"

    def login_without_xsrf():
        b = Client(api)
        r = expect(b.post("/login", {"email": email, "password": password}), 403)
        check(r.json().get("code") == "CSRF_FAILED", f"code {r.text}")
        return "session: 403 CSRF_FAILED"

    def login():
        r = expect(a.post("/login", {"email": email, "password": password}), 204)
        token = next((c for c in r.set_cookies if c.startswith("TOKEN=")), None)
        check(token, f"no TOKEN cookie: {r.set_cookies}")
        check("HttpOnly" in token and "Secure" in token, f"TOKEN attributes: {token}")
        return "session: TOKEN set"

    def verify(client, status):
        def run():
            r = expect(client.get("/verify"), status)
            if status == 401:
                check(r.json().get("code"), f"401 without a code: {r.text!r}")
            return f"session: {status}"

        return run

    def profile():
        body = expect(a.get("/user"), 200).json()
        check(body.get("email") == email, f"email {body.get('email')!r}")
        check(body.get("status") is True, f"status {body.get('status')!r}")
        check(body.get("phone") == "" and body.get("totp") == "", f"phone/totp not empty: {body}")
        meta = (body.get("history") or {}).get("metadata") or {}
        check(meta.get("source") == "password", f"history {body.get('history')}")
        check(meta.get("client_ip") == "127.0.0.1", f"history client_ip {body.get('history')}")
        ctx["id"] = body["_id"]
        return f"user: _id {body['_id']}, sessions {body.get('sessions')}"

    def rename():
        expect(a.patch("/user", {"key": "name", "name": "Ada Lovelace"}), 204)
        return "user"

    def renamed():
        body = expect(a.get("/user"), 200).json()
        check(body.get("name") == "Ada Lovelace", f"name {body.get('name')!r}")
        check(body.get("_id") == ctx["id"], "another account")
        return "user: name 'Ada Lovelace'"

    def totp_uri():
        body = expect(a.get("/user/totp"), 200).json()
        uri = body.get("totp", "")
        check(uri.startswith("otpauth://totp/"), f"totp {uri!r}")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
        ctx["uri"], ctx["secret"] = uri, query["secret"][0]
        return "user: otpauth URI"

    def bind_totp():
        # The codes of the previous and the current step, as an app shows them;
        # the server records the current step as spent.
        step_now = int(time.time()) // 30
        tss = [totp_code(ctx["secret"], step_now - 1), totp_code(ctx["secret"], step_now)]
        expect(a.post("/user/totp", {"totp": ctx["uri"], "tss": tss}), 204)
        ctx["bound_step"] = step_now
        body = expect(a.get("/user"), 200).json()
        check(body.get("totp") == "******", f"totp {body.get('totp')!r} after binding")
        return "user: bound"

    def login_totp():
        # A code of a step after the one spent binding: the next step's, which
        # the server accepts within its one-step skew (no 30 s wait).
        b = Client(api)
        expect(b.get("/"), 200)
        code = totp_code(ctx["secret"], ctx["bound_step"] + 1)
        expect(b.post("/login/totp", {"email": email, "code": code}), 204)
        check("TOKEN" in b.jar, "no TOKEN after TOTP login")
        expect(b.get("/verify"), 204)
        body = expect(b.get("/user"), 200).json()
        meta = (body.get("history") or {}).get("metadata") or {}
        check(meta.get("source") == "totp", f"history {body.get('history')}")
        ctx["b"] = b
        r = expect(b.post("/login/totp", {"email": email, "code": code}), 400, "(the same code again)")
        check(r.json().get("code") == "AUTH_INCORRECT", f"replay: {r.text!r}")
        return "session: 204, the same code again 400"

    def devices():
        # A third browser signs in; the first lists the three sessions and
        # signs the third out by the id the third sees as its own.
        d = Client(api)
        expect(d.get("/"), 200)
        expect(d.post("/login", {"email": email, "password": password}), 204)
        own = [s for s in expect(d.get("/user/sessions"), 200).json()["sessions"] if s["current"]]
        check(len(own) == 1, f"the third browser's own session: {own}")
        body = expect(a.get("/user/sessions"), 200).json()
        check(body.get("total") == 3, f"total {body.get('total')}, expected 3: {body}")
        ids = [s["id"] for s in body["sessions"]]
        check(own[0]["id"] in ids, f"{own[0]['id']} not in {ids}")
        claims = json.loads(base64.urlsafe_b64decode(d.jar["TOKEN"].split(".")[1] + "=="))
        check(claims["jti"] not in json.dumps(body), "the list shows a jti")
        expect(a.request("DELETE", "/user/sessions/" + own[0]["id"]), 204)
        expect(d.get("/verify"), 401, "(the ended device)")
        return "user: 3 sessions listed, the third ended: 401"

    def phone_code():
        ctx["sms_seen"] = count_sms(moto, PHONE)
        expect(a.get("/user/phone_code?phone=" + urllib.parse.quote(PHONE, safe="")), 204)
        ctx["sms"] = last_sms(moto, PHONE, ctx["sms_seen"])
        return "user: SMS in moto (sns.SMS)"

    def bind_phone():
        expect(a.post("/user/phone", {"phone": PHONE, "code": ctx["sms"]}), 204)
        return "user"

    def phone_masked():
        body = expect(a.get("/user"), 200).json()
        check(body.get("phone") == MASKED_PHONE, f"phone {body.get('phone')!r}, expected {MASKED_PHONE!r}")
        return f"user: phone {body['phone']}"

    def forget_code():
        ctx["mail_seen"] = count_mail(moto, email)
        expect(a.get("/forget_code?email=" + urllib.parse.quote(email, safe="")), 204)
        ctx["mail"] = last_mail(moto, email, ctx["mail_seen"])
        return "recovery: mail in moto (ses.Message)"

    def forget_reset():
        body = {"email": email, "code": ctx["mail"], "password": NEW_PASSWORD}
        expect(a.post("/forget_reset", body), 204)
        return "recovery"

    def old_password_refused():
        c = Client(api)
        expect(c.get("/"), 200)
        r = expect(c.post("/login", {"email": email, "password": password}), 400)
        check(r.json().get("code") == "AUTH_INCORRECT", f"code: {r.text!r}")
        return "session: 400 AUTH_INCORRECT"

    def login_new():
        c = Client(api)
        expect(c.get("/"), 200)
        expect(c.post("/login", {"email": email, "password": NEW_PASSWORD}), 204)
        expect(c.get("/verify"), 204)
        ctx["c"] = c
        return "session: 204"

    def logout():
        c = ctx["c"]
        ctx["c_token"] = c.jar.get("TOKEN", "")
        expect(c.post("/logout"), 204)
        check("TOKEN" not in c.jar, f"TOKEN not cleared: {c.jar}")
        return "session"

    def after_logout():
        c = ctx["c"]
        c.jar["TOKEN"] = ctx["c_token"]  # the cookie is gone; the session must be too
        return verify(c, 401)()

    def options():
        body = expect(a.get("/options?type=generate-secret"), 200).json()
        check(body, "empty options")
        return "options"

    def routes():
        # Signed out, no cookies, no query: each function answers with its own
        # 4xx (GET / 200, POST /logout 204) and no side effect. A route the
        # router lacks goes to watch's default function, which nobody serves:
        # 408 after `--timeout`; a wrong function answers 404 (and the log
        # check at the end names the function that served each request).
        anon = Client(api)
        for method, path in SEED_ROUTES:
            r = anon.request(method, path, None if method == "GET" else {})
            lark_off = path.startswith("/lark") and r.status == 404 and "LARK_DISABLED" in r.text
            check(r.status in (200, 204, 400, 401, 403) or lark_off, f"{method} {path}: {r.status} {r.text[:200]!r}")
        return f"{len(SEED_ROUTES)} routes answered by their functions"

    step("router: every seed path and method", routes)
    step("GET / (XSRF cookies)", ping)
    step("POST /login without X-XSRF-TOKEN: 403", login_without_xsrf)
    step("POST /login", login)
    step("GET /verify", verify(a, 204))
    step("GET /user", profile)
    step("PATCH /user name", rename)
    step("GET /user (name changed)", renamed)
    step("GET /options?type=generate-secret", options)
    step("GET /user/totp", totp_uri)
    step("POST /user/totp (two consecutive codes)", bind_totp)
    step("POST /login/totp", login_totp)
    step("GET /user/sessions, DELETE /user/sessions/{id}", devices)
    step("GET /user/phone_code", phone_code)
    step("POST /user/phone", bind_phone)
    step("GET /user (masked phone)", phone_masked)
    step("GET /forget_code", forget_code)
    step("POST /forget_reset", forget_reset)
    step("GET /verify, session before reset: 401", verify(a, 401))
    step("GET /verify, TOTP session before reset: 401", lambda: verify(ctx["b"], 401)())
    step("POST /login, old password: 400", old_password_refused)
    step("POST /login, new password", login_new)
    step("POST /logout", logout)
    step("GET /verify after logout (old TOKEN): 401", after_logout)
    if log_dir:
        step("function logs: one request line each", lambda: check_logs(log_dir))
    print(f"e2e: {ctx['passed']} passed, 0 failed", flush=True)


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    flow(*sys.argv[1:])


if __name__ == "__main__":
    main()
