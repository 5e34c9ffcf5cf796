"""Starts moto server on a loopback port and stops it when its parent goes away.

Prints the port on the first line of stdout, then serves until stdin reaches end of file:
the parent holds the write end of stdin, so when the test process exits (even killed),
the pipe closes and the server stops. No stray servers, no fixed ports.

Usage: python moto_server.py [port]   (port 0, the default, picks a free one)
"""
import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    # One line per request would bury the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(bound, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
