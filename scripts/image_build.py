#!/usr/bin/env python3
"""Assembles Ferry's OCI image layout from Debian packages and the ferry binary (image.sh).

Deterministic: sorted tar entries, fixed mtimes (SOURCE_DATE_EPOCH), numeric owners (0, and
65532 for /home/ferry), no user/group names, gzip without name or time, config without host data.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import tarfile

MULTIARCH = "x86_64-linux-gnu"
LIB_DIRS = [f"lib/{MULTIARCH}", f"usr/lib/{MULTIARCH}", "lib64", "lib", "usr/lib"]
UID = 65532

# Files taken from each package (prefix match on the path relative to the package root). Libraries
# are not listed: they come from the ELF closure of what is listed.
TAKE = {
    "git": ["usr/bin/git", "usr/lib/git-core/", "usr/share/git-core/templates/"],
    "openssh-client": ["usr/bin/ssh"],
    "ca-certificates": ["usr/share/ca-certificates/"],
    "dash": ["bin/dash"],
    "coreutils": ["bin/cat"],
    "libc6": [f"lib64/ld-linux-x86-64.so.2", f"lib/{MULTIARCH}/ld-linux-x86-64.so.2"],
}
# git-core programs that need perl, python or tk (not in the image).
SKIP_GIT = ("git-add--interactive", "git-archimport", "git-cvs", "git-send-email", "git-svn",
            "git-instaweb", "git-request-pull", "git-web--browse", "git-p4", "git-filter-branch",
            "git-gui", "gitk", "git-citool", "git-difftool--helper", "git-mergetool",
            # servers and tools a client does not run (2 MB each): Ferry clones, fetches and
            # pushes over smart http(s), ssh, git:// and file://.
            "git-daemon", "git-http-backend", "git-http-fetch", "git-http-push", "git-imap-send",
            "git-shell", "scalar", "mergetools")


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def elf_needed(path):
    """DT_NEEDED entries of an ELF64 little-endian file (empty for non-ELF)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dyn = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dyn = (p_offset, p_filesz)
    if dyn is None:
        return []

    def off(vaddr):
        for va, o, sz in loads:
            if va <= vaddr < va + sz:
                return vaddr - va + o
        raise ValueError(f"{path}: address {vaddr:#x} not mapped")

    needed, strtab = [], None
    for i in range(dyn[1] // 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[0] + i * 16)
        if tag == 0:
            break
        if tag == 1:
            needed.append(val)
        elif tag == 5:
            strtab = off(val)
    names = []
    for n in needed:
        end = data.index(b"\0", strtab + n)
        names.append(data[strtab + n:end].decode())
    return names


def main():
    ap = argparse.ArgumentParser()
    for a in ("--debs", "--binary", "--out", "--version", "--source", "--revision", "--epoch",
              "--work"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    epoch = int(args.epoch)
    work = args.work

    # 1. Extract every package into its own tree (no maintainer scripts run).
    pkgs = {}
    for deb in sorted(os.listdir(args.debs)):
        path = os.path.join(args.debs, deb)
        name = sh("dpkg-deb", "-f", path, "Package").strip()
        version = sh("dpkg-deb", "-f", path, "Version").strip()
        dest = os.path.join(work, "x", name)
        os.makedirs(dest)
        subprocess.run(["dpkg-deb", "-x", path, dest], check=True)
        pkgs[name] = {"version": version, "dir": dest, "arch": sh("dpkg-deb", "-f", path,
                                                                    "Architecture").strip()}

    rootfs = os.path.join(work, "rootfs")
    os.makedirs(rootfs)
    used = set()

    def copy(pkg, rel):
        src = os.path.join(pkgs[pkg]["dir"], rel)
        dst = os.path.join(rootfs, rel)
        if os.path.lexists(dst):
            return
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
        used.add(pkg)

    # 2. The listed files.
    for pkg, prefixes in TAKE.items():
        base = pkgs[pkg]["dir"]
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames + [d for d in dirnames
                                          if os.path.islink(os.path.join(dirpath, d))]):
                rel = os.path.relpath(os.path.join(dirpath, fn), base)
                if not any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in prefixes):
                    continue
                if pkg == "git" and any(part.startswith(SKIP_GIT) for part in rel.split("/")[3:]):
                    continue
                copy(pkg, rel)

    # git-core/git is a second copy of /usr/bin/git in the package: link it instead (3.7 MB).
    core_git = os.path.join(rootfs, "usr/lib/git-core/git")
    with open(core_git, "rb") as a, open(os.path.join(rootfs, "usr/bin/git"), "rb") as b:
        if a.read() == b.read():
            os.remove(core_git)
            os.symlink("../../bin/git", core_git)

    # 3. Shared libraries: the DT_NEEDED closure, resolved in the extracted packages.
    def find_lib(soname):
        for pkg in sorted(pkgs):
            for d in LIB_DIRS:
                rel = os.path.join(d, soname)
                if os.path.lexists(os.path.join(pkgs[pkg]["dir"], rel)):
                    return pkg, rel
        raise SystemExit(f"image_build: no package provides {soname}")

    def add_lib(soname):
        pkg, rel = find_lib(soname)
        # Copy the symlink chain and its target.
        while True:
            copy(pkg, rel)
            src = os.path.join(pkgs[pkg]["dir"], rel)
            if not os.path.islink(src):
                return os.path.join(rootfs, rel)
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), os.readlink(src)))

    os.makedirs(os.path.join(rootfs, "usr/local/bin"))
    ferry = os.path.join(rootfs, "usr/local/bin/ferry")
    shutil.copy2(args.binary, ferry)
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-unneeded", ferry], check=True)
    os.chmod(ferry, 0o755)

    done, queue = set(), []
    for dirpath, _, filenames in os.walk(rootfs):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if not os.path.islink(p):
                queue.append(p)
    while queue:
        path = queue.pop()
        for soname in elf_needed(path):
            if soname not in done:
                done.add(soname)
                queue.append(add_lib(soname))

    # 4. /bin/sh, the CA bundle (update-ca-certificates' output), users, home, tmp.
    os.symlink("dash", os.path.join(rootfs, "bin/sh"))
    certs = os.path.join(rootfs, "etc/ssl/certs")
    os.makedirs(certs)
    cadir = os.path.join(rootfs, "usr/share/ca-certificates")
    with open(os.path.join(certs, "ca-certificates.crt"), "wb") as bundle:
        for dirpath, dirnames, filenames in sorted(os.walk(cadir)):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith(".crt"):
                    with open(os.path.join(dirpath, fn), "rb") as f:
                        data = f.read()
                    bundle.write(data if data.endswith(b"\n") else data + b"\n")
    # The PEM bundle is all that git (gnutls), ssh and ferry (rustls) read; the per-certificate
    # sources are not needed once concatenated.
    shutil.rmtree(os.path.join(rootfs, "usr/share/ca-certificates"))
    etc = os.path.join(rootfs, "etc")
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                f"ferry:x:{UID}:{UID}:ferry:/home/ferry:/usr/sbin/nologin\n")
    with open(os.path.join(etc, "group"), "w") as f:
        f.write(f"root:x:0:\nferry:x:{UID}:\n")
    with open(os.path.join(etc, "nsswitch.conf"), "w") as f:
        f.write("passwd: files\ngroup: files\nhosts: files dns\n")
    os.makedirs(os.path.join(rootfs, "home/ferry"))
    os.makedirs(os.path.join(rootfs, "tmp"))
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)

    # 5. SBOM: the Debian packages with files in the image, and ferry itself.
    sbom = {
        "sbomFormat": "ferry-image-sbom",
        "version": 1,
        "ferry": {"version": args.version, "revision": args.revision},
        "debian": [{"package": p, "version": pkgs[p]["version"], "architecture": pkgs[p]["arch"]}
                   for p in sorted(used)],
    }
    sbom_bytes = (json.dumps(sbom, indent=2, sort_keys=True) + "\n").encode()
    os.makedirs(os.path.join(rootfs, "usr/share/ferry"))
    with open(os.path.join(rootfs, "usr/share/ferry/sbom.json"), "wb") as f:
        f.write(sbom_bytes)

    # 6. The layer: sorted, fixed times and owners; hard links kept.
    raw = io.BytesIO()
    inodes = {}
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            for n in dirnames + filenames:
                entries.append(os.path.relpath(os.path.join(dirpath, n), rootfs))
        for rel in sorted(entries):
            full = os.path.join(rootfs, rel)
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mtime = epoch
            ti.mode = stat.S_IMODE(st.st_mode)
            owned = rel == "home/ferry" or rel.startswith("home/ferry/")
            ti.uid = ti.gid = UID if owned else 0
            ti.uname = ti.gname = ""
            data = None
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
            elif (st.st_dev, st.st_ino) in inodes and st.st_nlink > 1:
                ti.type = tarfile.LNKTYPE
                ti.linkname = inodes[(st.st_dev, st.st_ino)]
            else:
                ti.type = tarfile.REGTYPE
                ti.size = st.st_size
                inodes[(st.st_dev, st.st_ino)] = rel
                data = open(full, "rb")
            tar.addfile(ti, data)
            if data:
                data.close()
    layer = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as g:
        g.write(layer)
    layer_gz = gz.getvalue()

    # 7. Config, manifest, index.
    def digest(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()

    created = __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime(epoch))
    labels = {
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.title": "ferry",
    }
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{UID}",
            "Entrypoint": ["/usr/local/bin/ferry"],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/ferry",
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "WorkingDir": "/home/ferry",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        "history": [{"created": created, "created_by": "scripts/image.sh"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer_gz), "size": len(layer_gz)}],
        "annotations": {**labels, "dev.ferry.sbom.digest": digest(sbom_bytes)},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    blobs = os.path.join(args.out, "blobs", "sha256")
    os.makedirs(blobs)
    for b in (config_bytes, layer_gz, manifest_bytes):
        with open(os.path.join(blobs, digest(b)[7:]), "wb") as f:
            f.write(b)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": manifest["mediaType"], "digest": digest(manifest_bytes),
                       "size": len(manifest_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": args.version}}],
    }
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True, separators=(",", ":"))
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(args.out, "sbom.json"), "wb") as f:
        f.write(sbom_bytes)
    print(json.dumps({"manifest": digest(manifest_bytes), "layer_bytes": len(layer),
                      "layer_gzip_bytes": len(layer_gz)}))


if __name__ == "__main__":
    main()
