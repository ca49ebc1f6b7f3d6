"""Schemathesis hooks for scripts/fuzz: every call carries a live session.

Before each call the case gets the `TOKEN` and `XSRF-SALT` cookies and the
`X-XSRF-TOKEN` header of a signed-in session (FUZZ_BASE, FUZZ_EMAIL,
FUZZ_PASSWORD), so authenticated and CSRF-protected operations are exercised
past the door. After an operation that can end the session (logout, password
change or reset, DELETE /user/*: unbinding, ending sessions) or any 401, the
next call signs in again; a TOKEN the server hands out (refresh, login) is
adopted. DELETE /user/sessions ends every session but the caller's, and
DELETE /user/sessions/{id} the fuzzer's own only if it hits its id: signing in
again after either keeps every later call signed in, whatever they ended.
"""

import os
import threading

import requests
import schemathesis

BASE = os.environ["FUZZ_BASE"].rstrip("/")
EMAIL = os.environ["FUZZ_EMAIL"]
PASSWORD = os.environ["FUZZ_PASSWORD"]

# (method, path template) of the operations that can sign the fuzzer out.
ENDING = {
    ("POST", "/logout"),
    ("POST", "/user/password"),
    ("POST", "/forget_reset"),
    ("DELETE", "/user/sessions"),
    ("DELETE", "/user/sessions/{id}"),
}

_lock = threading.Lock()
_state = {"salt": None, "xsrf": None, "token": None, "logins": 0}


def _login() -> None:
    """GET / for the XSRF pair, then POST /login; fills `_state`."""
    r = requests.get(BASE + "/", timeout=30)
    r.raise_for_status()
    salt, xsrf = r.cookies.get("XSRF-SALT"), r.cookies.get("XSRF-TOKEN")
    if not salt or not xsrf:
        raise RuntimeError(f"GET / set no XSRF cookies: {r.headers}")
    r = requests.post(
        BASE + "/login",
        json={"email": EMAIL, "password": PASSWORD},
        cookies={"XSRF-SALT": salt},
        headers={"X-XSRF-TOKEN": xsrf},
        timeout=30,
    )
    token = r.cookies.get("TOKEN")
    if r.status_code != 204 or not token:
        raise RuntimeError(f"login failed: {r.status_code} {r.text}")
    _state.update(salt=salt, xsrf=xsrf, token=token)
    _state["logins"] += 1


def _set_cookie(response, name):
    """The value `response` sets for cookie `name` (None if it sets none)."""
    for line in response.headers.get("set-cookie", []):
        pair = line.split(";", 1)[0]
        key, _, value = pair.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    with _lock:
        if _state["token"] is None:
            _login()
        cookies = dict(case.cookies or {})
        cookies.update({"TOKEN": _state["token"], "XSRF-SALT": _state["salt"]})
        case.cookies = cookies
        headers = dict(case.headers or {})
        headers["X-XSRF-TOKEN"] = _state["xsrf"]
        case.headers = headers


@schemathesis.hook
def after_call(context, case, response):
    op = (case.operation.method.upper(), case.operation.path)
    with _lock:
        if (
            op in ENDING
            or (op[0] == "DELETE" and op[1].startswith("/user/"))
            or response.status_code == 401
        ):
            _state["token"] = None
            return
        token = _set_cookie(response, "TOKEN")
        if token:
            _state["token"] = token
