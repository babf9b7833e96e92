#!/usr/bin/env python3
"""Pushes tiny but real OCI images to a registry over the distribution API (Ferry test bed).

  ocipush.py image URL REPO TAG [--platform os/arch] [--content TEXT]   prints the digest
  ocipush.py index URL REPO TAG [--platforms linux/amd64,linux/arm64]   2+ platform OCI index
  ocipush.py tags  URL REPO SRC_TAG COUNT [--prefix t-] [--jobs N]       COUNT more tags -> SRC_TAG's manifest
  ocipush.py list  URL REPO                                             tags, following Link

URL: http(s)://127.0.0.1:PORT. Credentials and CA default to $TESTBED_REGISTRY_USER,
$TESTBED_REGISTRY_PASSWORD and $TESTBED_REGISTRY_CA. Basic and Bearer (token) auth are
answered from the WWW-Authenticate challenge. Standard library only.
"""
import argparse
import base64
import concurrent.futures
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import ssl
import sys
import tarfile
import threading
import urllib.parse
import urllib.request

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ",".join([MANIFEST, INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json"])


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    def __init__(self, url, user, password, cacert):
        parts = urllib.parse.urlsplit(url)
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.user, self.password = user, password
        self.ctx = ssl.create_default_context(cafile=cacert) if self.scheme == "https" else None
        self.conn = None
        self.authorization = None

    def basic(self):
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def connection(self):
        if self.conn is None:
            if self.ctx:
                self.conn = http.client.HTTPSConnection(self.netloc, timeout=60, context=self.ctx)
            else:
                self.conn = http.client.HTTPConnection(self.netloc, timeout=60)
        return self.conn

    def login(self, challenge):
        if challenge.lower().startswith("bearer"):
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
            req = urllib.request.Request(params["realm"] + "?" + query)
            if self.user:
                req.add_header("Authorization", self.basic())
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as resp:
                body = json.load(resp)
            self.authorization = "Bearer " + (body.get("token") or body["access_token"])
        elif self.user:
            self.authorization = self.basic()
        else:
            sys.exit("ocipush: registry wants credentials; set TESTBED_REGISTRY_USER/PASSWORD")

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 202, 204)):
        headers = dict(headers or {})
        for attempt in range(3):
            if self.authorization:
                headers["Authorization"] = self.authorization
            try:
                conn = self.connection()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status == 401 and attempt < 2:
                self.login(resp.getheader("WWW-Authenticate", ""))
                continue
            if resp.status not in expect:
                sys.exit(f"ocipush: {method} {path}: HTTP {resp.status}: {data[:200]!r}")
            return resp, data
        sys.exit(f"ocipush: {method} {path}: not authorized")

    def blob(self, repo, data):
        d = digest(data)
        resp, _ = self.call("HEAD", f"/v2/{repo}/blobs/{d}", expect=(200, 404))
        if resp.status == 200:
            return d
        resp, _ = self.call("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
        loc = urllib.parse.urlsplit(resp.getheader("Location"))
        query = "&".join(q for q in (loc.query, "digest=" + urllib.parse.quote(d)) if q)
        self.call("PUT", f"{loc.path}?{query}", body=data, expect=(201,),
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Length": str(len(data))})
        return d

    def put_manifest(self, repo, ref, data, media_type):
        resp, _ = self.call("PUT", f"/v2/{repo}/manifests/{ref}", body=data,
                            headers={"Content-Type": media_type}, expect=(201,))
        return resp.getheader("Docker-Content-Digest") or digest(data)

    def get_manifest(self, repo, ref):
        resp, data = self.call("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        return data, resp.getheader("Content-Type")


def tar_gz(name, text):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), digest(plain)


def push_image(client, repo, tag, platform, content):
    os_name, arch = platform.split("/", 1)
    layer, diff_id = tar_gz("hello.txt", content)
    config = json.dumps({"architecture": arch, "os": os_name, "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
                        sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": client.blob(repo, config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": client.blob(repo, layer), "size": len(layer)}],
    }, sort_keys=True).encode()
    return client.put_manifest(repo, tag, manifest, MANIFEST), len(manifest)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["image", "index", "tags", "list"])
    ap.add_argument("url")
    ap.add_argument("repo")
    ap.add_argument("tag", nargs="?")
    ap.add_argument("count", nargs="?", type=int)
    ap.add_argument("--platform", default="linux/amd64")
    ap.add_argument("--platforms", default="linux/amd64,linux/arm64")
    ap.add_argument("--content", default="hello from ferry's test bed\n")
    ap.add_argument("--prefix", default="t-")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--user", default=os.environ.get("TESTBED_REGISTRY_USER") or None)
    ap.add_argument("--password", default=os.environ.get("TESTBED_REGISTRY_PASSWORD") or None)
    ap.add_argument("--cacert", default=os.environ.get("TESTBED_REGISTRY_CA") or None)
    a = ap.parse_args()
    client = Client(a.url, a.user, a.password, a.cacert)
    if a.cmd in ("image", "index", "tags") and not a.tag:
        sys.exit("ocipush: TAG is required")
    if a.cmd == "image":
        print(push_image(client, a.repo, a.tag, a.platform, a.content)[0])
    elif a.cmd == "index":
        children = []
        for platform in a.platforms.split(","):
            child_tag = a.tag + "-" + platform.replace("/", "-")
            d, size = push_image(client, a.repo, child_tag, platform, a.content + platform + "\n")
            os_name, arch = platform.split("/", 1)
            children.append({"mediaType": MANIFEST, "digest": d, "size": size,
                             "platform": {"architecture": arch, "os": os_name}})
        index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": children},
                           sort_keys=True).encode()
        print(client.put_manifest(a.repo, a.tag, index, INDEX))
    elif a.cmd == "tags":
        if a.count is None:
            sys.exit("ocipush: COUNT is required")
        body, media_type = client.get_manifest(a.repo, a.tag)
        local = threading.local()

        def put(i):
            if not hasattr(local, "client"):
                local.client = Client(a.url, a.user, a.password, a.cacert)
                local.client.authorization = client.authorization
            return local.client.put_manifest(a.repo, f"{a.prefix}{i}", body, media_type)

        with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:
            digests = set(pool.map(put, range(a.count)))
        if len(digests) > 1:
            sys.exit(f"ocipush: digests differ across tags: {digests}")
        print(digest(body))
    else:
        path, tags = f"/v2/{a.repo}/tags/list?n=1000", []
        while path:
            resp, data = client.call("GET", path)
            tags += json.loads(data).get("tags") or []
            link = resp.getheader("Link")
            path = urllib.parse.urlsplit(link.split(";")[0].strip(" <>")).geturl() if link else None
        print("\n".join(tags))


if __name__ == "__main__":
    main()
