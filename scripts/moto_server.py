"""moto's server, one request at a time.

`moto_server` serves each request on its own thread, and moto's DynamoDB
applies an update expression or a transaction without a lock, so two
concurrent `ADD`s on one item can lose one (the race tests saw 38 of 40).
Real DynamoDB applies each call atomically; serving one request at a time
gives moto the same guarantee. Same app, same request handler and the same
-H/-p flags as `moto_server`; only `threaded` differs.

    .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p 5077
"""

import argparse
import os

from werkzeug.serving import make_server

from moto.server import DomainDispatcherApplication, create_backend_app

try:  # newer moto: its handler keeps header names with underscores (S3 metadata)
    from moto.moto_server.werkzeug_app import MotoRequestHandler
except ImportError:  # older moto: werkzeug's own handler, as its moto_server used
    MotoRequestHandler = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind (5000)")
    args = parser.parse_args()
    # moto builds some URLs it answers (e.g. Lambda's AWS endpoint) from MOTO_PORT.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    app = DomainDispatcherApplication(create_backend_app)
    extra = {"request_handler": MotoRequestHandler} if MotoRequestHandler else {}
    server = make_server(args.host, args.port, app, threaded=False, processes=1, **extra)
    print(f"moto (single-threaded) on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
