"""Median latency of GET /forget_code and GET /login/sms for a recipient with
an account and one without, against a running `planx serve` (BENCHMARKS.md,
"Code requests"). Requests alternate known, unknown, so load and drift hit
both alike; each pair is preceded by GET / for the XSRF cookies the server
does not need here but a browser would send.

    python3 bench/code-timing.py BASE N KNOWN_EMAIL KNOWN_PHONE

Prints a Markdown row per route: medians (ms) and their difference.
"""

import statistics
import sys
import time
import urllib.parse
import urllib.request


def timed(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()
        if r.status != 204:
            raise SystemExit(f"{url}: {r.status}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    base, n, email, phone = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    routes = [
        ("GET /forget_code", "/forget_code?email=", email, "nobody@example.com"),
        ("GET /login/sms", "/login/sms?phone=", phone, "+14155550999"),
    ]
    for name, path, known, unknown in routes:
        samples = {"known": [], "unknown": []}
        for _ in range(n):
            for kind, who in (("known", known), ("unknown", unknown)):
                samples[kind].append(timed(base + path + urllib.parse.quote(who)))
        k, u = (statistics.median(samples[x]) for x in ("known", "unknown"))
        print(f"| {name} | {n} + {n} | {k:.1f} | {u:.1f} | {k - u:+.1f} |")


if __name__ == "__main__":
    main()
