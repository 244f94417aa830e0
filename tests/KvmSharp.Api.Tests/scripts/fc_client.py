#!/usr/bin/env python3
"""A stdlib-only client of the Firecracker API, speaking as Firecracker's test framework does.

Firecracker's tests (tests/framework/http_api.py) use requests-unixsocket: the URL is
http+unix://<percent-encoded socket path>/<resource>, so the Host header carries the socket path percent-encoded
(%2Frun%2Ffirecracker.socket), and one keep-alive session sends every request. This client does the same with
http.client over AF_UNIX.

    python3 fc_client.py API_SOCKET < requests.json

requests.json is a JSON list of [method, path, body]; body is a JSON value (sent encoded), a string (sent as it is:
for malformed JSON) or null (no body). Prints one JSON line per request: [status, response body or null].
"""
import http.client
import json
import socket
import sys
import urllib.parse


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path):
        # The host part of requests-unixsocket's URL: the socket path, percent-encoded.
        super().__init__(urllib.parse.quote(socket_path, safe=""))
        self._socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._socket_path)


def main():
    socket_path = sys.argv[1]
    requests = json.load(sys.stdin)
    connection = UnixConnection(socket_path)
    for method, path, body in requests:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        reply = json.loads(text) if text else None
        print(json.dumps([response.status, reply]), flush=True)
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = UnixConnection(socket_path)
    connection.close()


if __name__ == "__main__":
    main()
