#!/usr/bin/env python3
"""Token server for docker-registry's `auth: token` mode (Ferry test bed; stdlib + openssl CLI).

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with optional Basic credentials
returns {"token", "access_token", "expires_in", "issued_at"}; POST /token accepts the OAuth2
password grant form. Tokens are RS256 JWTs whose header carries the signing certificate (x5c),
which must be in the registry's rootcertbundle. Users come from --user NAME:PASSWORD:rw|ro; "ro"
users are granted pull only. Every request is appended as one JSON line to --log, so tests can
check which scopes a client asked for.
"""
import argparse
import base64
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPTS = None
CERT_B64 = ""
LOG_LOCK = threading.Lock()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: bytes) -> bytes:
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", OPTS.key],
                         input=payload, capture_output=True, check=True)
    return out.stdout


def jwt(subject: str, access: list) -> str:
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [CERT_B64]}
    # distribution 2.8 rejects a list-valued "aud": keep it a plain string
    claims = {"iss": OPTS.issuer, "aud": OPTS.service, "sub": subject, "iat": now,
              "nbf": now - 10, "exp": now + OPTS.ttl, "access": access}
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(sign(head.encode()))


def parse_scope(scope: str):
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def record(entry: dict):
    if not OPTS.log:
        return
    with LOG_LOCK, open(OPTS.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("token_issuer: " + (fmt % args) + "\n")

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def grant(self, method, user, password, service, scopes):
        ok_user = user is not None and OPTS.users.get(user, (None,))[0] == password
        record({"method": method, "user": user, "service": service, "scopes": scopes,
                "authenticated": ok_user})
        if service and service != OPTS.service:
            return self.send_json(400, {"errors": [{"code": "UNSUPPORTED",
                                                    "message": "unknown service"}]})
        if not ok_user:
            return self.send_json(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]},
                                  [("WWW-Authenticate", 'Basic realm="ferry-token"')])
        read_only = OPTS.users[user][1] == "ro"
        access = []
        for s in scopes:
            entry = parse_scope(s)
            if read_only:
                entry["actions"] = [a for a in entry["actions"] if a == "pull"]
            access.append(entry)
        token = jwt(user, access)
        self.send_json(200, {"token": token, "access_token": token, "expires_in": OPTS.ttl,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.send_json(404, {"error": "not found"})
        query = urllib.parse.parse_qs(url.query)
        user = password = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user = None
        scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
        self.grant("GET", user, password, query.get("service", [""])[0], scopes)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type", [""])[0] != "password":
            return self.send_json(400, {"error": "unsupported_grant_type"})
        scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
        self.grant("POST", form.get("username", [None])[0], form.get("password", [None])[0],
                   form.get("service", [""])[0], scopes)


def main():
    global OPTS, CERT_B64
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--user", action="append", default=[], help="NAME:PASSWORD:rw|ro")
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--log")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    OPTS = ap.parse_args()
    OPTS.users = {}
    for spec in OPTS.user:
        name, password, mode = (spec.split(":") + ["rw"])[:3]
        OPTS.users[name] = (password, mode)
    der = subprocess.run(["openssl", "x509", "-in", OPTS.cert, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    CERT_B64 = base64.b64encode(der).decode()
    server = ThreadingHTTPServer(("127.0.0.1", OPTS.port), Handler)
    if OPTS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(OPTS.tls_cert, OPTS.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
