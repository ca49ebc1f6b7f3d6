#!/usr/bin/env python3
"""Cold start, first-event latency, size and peak memory of each Lambda binary.

Serves a minimal Lambda runtime API itself (the endpoints a custom runtime
calls: invocation/next, invocation/<id>/response and the error endpoints),
starts each `bootstrap` against it, and measures:

- init: process start to its first `invocation/next` request (ready for the
  first event), the part of a cold start the function controls;
- first event: that `next` answered to the response posted back;
- peak RSS (VmHWM) after the event;
- size of the binary and of its zip.

Every function runs beside a hello-world lambda_http binary built with the same
profile, in the same run. Functions that touch AWS need a moto endpoint with a
table and an account (see `bench/run`, which sets that up).

The server key comes from `KEY`, or with `--key-secret` from that Secrets
Manager secret (`KEY_SECRET_ARN`, as deployed), which holds the same key, so
the cost of reading it at cold start shows in `init`.

Usage: bench/coldstart.py --bin-dir target/release --runs 30 [--aws-endpoint URL] [--key-secret NAME]
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import io
import json
import os
import statistics
import struct
import subprocess
import sys
import threading
import time
import zipfile

KEY = "bench-key-bench-key-bench-key-bench-key!"
SALT = "AAAAAAAAAAAAAAAAAAAAAA"


def framed_hmac(key: bytes, *parts: bytes) -> bytes:
    """shared::crypto::hmac: each part length-prefixed (u64 big-endian)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(struct.pack(">Q", len(part)))
        mac.update(part)
    return mac.digest()


def xsrf_token(key: str, salt: str) -> str:
    subkey = framed_hmac(key.encode(), b"planx/xsrf")
    token = framed_hmac(subkey, salt.encode())
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def event(method, path, query="", body=None, cookies=None, headers=None):
    h = {"host": "bench.local", "user-agent": "planx-bench/1.0"}
    if body is not None:
        h["content-type"] = "application/json"
    h.update(headers or {})
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": cookies or [],
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "planx-bench/1.0",
            },
            "requestId": "bench-request",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "15/Jan/2027:08:00:00 +0000",
            "timeEpoch": 1800000000000,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class RuntimeApi(http.server.ThreadingHTTPServer):
    """One invocation per process start: hands out `event`, records timings."""

    daemon_threads = True

    def reset(self, payload: dict):
        self.payload = json.dumps(payload).encode()
        self.t_next = None
        self.t_done = None
        self.response = None
        self.error = None
        self.served = threading.Event()
        self.done = threading.Event()
        self.parked = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        api: RuntimeApi = self.server
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if api.served.is_set():
            api.parked.set()  # ready for a second event: the first is over
            time.sleep(3600)
            return
        api.t_next = time.perf_counter()
        api.served.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench",
        )
        self.send_header("Content-Length", str(len(api.payload)))
        self.end_headers()
        self.wfile.write(api.payload)

    def do_POST(self):
        api: RuntimeApi = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.endswith("/response"):
            api.t_done = time.perf_counter()
            api.response = json.loads(body or b"{}")
        else:
            api.error = body.decode(errors="replace")
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        api.done.set()


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def invoke(api: RuntimeApi, binary: str, payload: dict, env: dict):
    """Starts `binary` cold, serves it `payload`; returns (init_ms, event_ms, rss_kib, response)."""
    api.reset(payload)
    port = api.server_address[1]
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        **env,
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.done.wait(30):
            raise RuntimeError(f"{binary}: no response ({proc.stderr.read1(4096)!r})")
        api.parked.wait(5)
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    if api.error:
        raise RuntimeError(f"{binary}: error {api.error}")
    return (api.t_next - t0) * 1000, (api.t_done - api.t_next) * 1000, rss, api.response


def zipped_size(path: str) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--aws-endpoint", help="moto endpoint with TABLE_NAME and the bench account")
    ap.add_argument("--table", default="planx-bench")
    ap.add_argument("--email", default="bench@example.com")
    ap.add_argument("--password", default="correct horse battery staple")
    ap.add_argument("--only", help="comma-separated binaries to measure")
    ap.add_argument("--key-secret", help="read the key from this secret (KEY_SECRET_ARN) instead of KEY")
    ap.add_argument("--cert-file", help="SSL_CERT_FILE for the functions (one CA bundle, as on provided.al2023)")
    args = ap.parse_args()

    env = {"MODE": "release", "TABLE_NAME": args.table, "AWS_REGION": "us-east-1"}
    if args.key_secret:
        env["KEY_SECRET_ARN"] = args.key_secret
    else:
        env["KEY"] = KEY
    if args.cert_file:
        env["SSL_CERT_FILE"] = args.cert_file
    if args.aws_endpoint:
        env.update(
            AWS_ENDPOINT_URL=args.aws_endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
    token = xsrf_token(KEY, SALT)
    write = {"cookies": [f"XSRF-SALT={SALT}"], "headers": {"x-xsrf-token": token}}

    cases = [
        ("hello", event("GET", "/")),
        ("ping", event("GET", "/")),
        ("options", event("GET", "/options", "type=generate-secret")),
        ("session", event("GET", "/verify")),
        ("recovery", event("POST", "/forget_reset", body={"email": "x"}, **write)),
        ("user", event("GET", "/user")),
    ]
    api = RuntimeApi(("127.0.0.1", 0), Handler)
    threading.Thread(target=api.serve_forever, daemon=True).start()

    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]
    rows = []
    for name, payload in cases:
        path = os.path.join(args.bin_dir, name)
        inits, firsts, rss = [], [], []
        for _ in range(args.runs):
            i, f, r, resp = invoke(api, path, payload, env)
            inits.append(i)
            firsts.append(f)
            rss.append(r)
        status = resp.get("statusCode")
        route = payload["routeKey"]
        rows.append((name, route, status, inits, firsts, max(rss), os.path.getsize(path), zipped_size(path)))

    source = f"secret {args.key_secret}" if args.key_secret else "KEY"
    print(f"{args.runs} cold starts per binary, key from {source}; times in ms (median / p90), sizes in bytes\n")
    print("| binary | first event | status | init median | init p90 | first event median | peak RSS | bootstrap | zip |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, route, status, inits, firsts, rss, size, zsize in rows:
        q = statistics.quantiles(inits, n=10)
        print(
            f"| {name} | {route} | {status} | {statistics.median(inits):.2f} | {q[-1]:.2f} | "
            f"{statistics.median(firsts):.2f} | {rss / 1024:.1f} MiB | {size:,} | {zsize:,} |"
        )

    if args.aws_endpoint:
        # Peak memory during the heavy paths: a login (Argon2 at the OWASP
        # parameters) and a profile read with the session it made.
        login = event("POST", "/login", body={"email": args.email, "password": args.password}, **write)
        i, f, r, resp = invoke(api, os.path.join(args.bin_dir, "session"), login, env)
        print(f"\nPOST /login (session): status {resp.get('statusCode')}, init {i:.2f} ms, event {f:.2f} ms, peak RSS {r / 1024:.1f} MiB")
        cookies = [c.split(";")[0] for c in resp.get("cookies", []) if c.startswith("TOKEN=")]
        profile = event("GET", "/user", cookies=cookies)
        i, f, r, resp = invoke(api, os.path.join(args.bin_dir, "user"), profile, env)
        print(f"GET /user (user): status {resp.get('statusCode')}, init {i:.2f} ms, event {f:.2f} ms, peak RSS {r / 1024:.1f} MiB")
    api.shutdown()


if __name__ == "__main__":
    sys.exit(main())
