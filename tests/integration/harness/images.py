"""Builds OCI / Docker images without docker and pushes them to a harness.registry.Registry.

Layers are tarballs made reproducibly with Python's tarfile (mtime 0 unless given, numeric owners,
PAX format so xattrs survive), compressed with gzip -n semantics, zstd or not at all. Real content
comes from Debian's busybox-static. Hostile entries (../, absolute names, devices, links that point
outside) can be written on purpose: tarfile stores names as given."""
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import zlib

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "gzip-multi"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
}

BUSYBOX = "/bin/busybox"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    def __init__(self):
        self.entries = []

    def _info(self, path, type_, mode, uid=0, gid=0, mtime=0):
        ti = tarfile.TarInfo(path)
        ti.type = type_
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        return ti

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.entries.append((self._info(path, tarfile.DIRTYPE, mode, uid, gid), None))
        return self

    def file(self, path, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        for k, v in (xattrs or {}).items():
            ti.pax_headers["SCHILY.xattr." + k] = v
        self.entries.append((ti, data))
        return self

    def symlink(self, path, target, uid=0, gid=0):
        ti = self._info(path, tarfile.SYMTYPE, 0o777, uid, gid)
        ti.linkname = target
        self.entries.append((ti, None))
        return self

    def hardlink(self, path, target):
        ti = self._info(path, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.entries.append((ti, None))
        return self

    def device(self, path, char=True, major=1, minor=3):
        ti = self._info(path, tarfile.CHRTYPE if char else tarfile.BLKTYPE, 0o666)
        ti.devmajor, ti.devminor = major, minor
        self.entries.append((ti, None))
        return self

    def fifo(self, path, mode=0o644):
        self.entries.append((self._info(path, tarfile.FIFOTYPE, mode), None))
        return self

    def whiteout(self, path):
        parent, _, base = path.rpartition("/")
        return self.file((parent + "/" if parent else "") + ".wh." + base)

    def opaque(self, dirpath):
        return self.file(dirpath.rstrip("/") + "/.wh..wh..opq")

    def busybox(self, applets=("sh", "ls", "cat", "echo", "true")):
        with open(BUSYBOX, "rb") as f:
            data = f.read()
        self.dir("bin")
        self.file("bin/busybox", data, mode=0o755)
        for a in applets:
            self.symlink(f"bin/{a}", "busybox")
        return self

    def _parents(self, rel):
        made = self.__dict__.setdefault("_made", {e[0].name for e in self.entries if e[0].type == tarfile.DIRTYPE})
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                self.dir(d)
                made.add(d)

    def host_file(self, path, mode=None):
        """The host's file at the same path (its content, symlinks followed; mode as on the host
        unless given)."""
        rel = path.lstrip("/")
        self._parents(rel)
        real = os.path.realpath(path)
        with open(real, "rb") as f:
            self.file(rel, f.read(), mode=mode if mode is not None else os.stat(real).st_mode & 0o7777)
        return self

    def host_binary(self, path):
        """A host binary and the shared libraries ldd lists for it (loader included), at the
        paths they have on the host: a real server from a Debian package, without the package."""
        if path not in self.__dict__.setdefault("_binaries", set()):
            self._binaries.add(path)
            ldd = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
            for lib in sorted({w for line in ldd.splitlines() for w in line.split() if w.startswith("/")}):
                if lib not in self._binaries:
                    self._binaries.add(lib)
                    self.host_file(lib)
            self.host_file(path)
        return self

    def host_tree(self, top):
        """Every regular file and symlink under a host directory (data files such as
        /usr/share/X11/xkb)."""
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = dirpath.lstrip("/")
            self._parents(rel + "/x")
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    self._parents(full.lstrip("/"))
                    self.symlink(full.lstrip("/"), os.readlink(full))
                elif os.path.isfile(full):
                    self.host_file(full)
            for name in dirnames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    self.symlink(full.lstrip("/"), os.readlink(full))
        return self

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for ti, data in self.entries:
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def compress(data, kind):
    if kind == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if kind == "gzip-multi":
        # two concatenated gzip members, as pigz or appending writers produce
        half = len(data) // 2
        return gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0)
    if kind == "zstd":
        return subprocess.run(["zstd", "-q", "-3", "-c"], input=data, check=True, stdout=subprocess.PIPE).stdout
    if kind == "none":
        return data
    raise ValueError(kind)


class Blob:
    """A layer given as the blob the registry stores (already compressed) and the diff_id of the
    tar inside it; for layers too big to build as a Layer (bombs)."""

    def __init__(self, data, diff_id):
        self.data, self.diff_id = data, diff_id


def gzip_bomb(mib, name="zero"):
    """A gzip layer (one member, as image builders write them) holding one file of mib MiB of zeros:
    about 1/1000 of that compressed, and cheap to make: the deflate stream repeats one fully
    flushed block of 1 MiB of zeros instead of compressing the whole."""
    ti = tarfile.TarInfo(name)
    ti.size = mib << 20
    header = ti.tobuf(tarfile.GNU_FORMAT)
    zero = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)]
    block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    h, crc = hashlib.sha256(header), zlib.crc32(header)
    for _ in range(mib + 1):  # the file, then 1 MiB of zeros that end the tar
        h.update(zero)
        crc = zlib.crc32(zero, crc)
    parts += [block] * (mib + 1)
    parts += [c.flush(zlib.Z_FINISH), struct.pack("<II", crc, (len(header) + ((mib + 1) << 20)) & 0xFFFFFFFF)]
    return Blob(b"".join(parts), "sha256:" + h.hexdigest())


class Image:
    """layers: list of (Layer, raw tar bytes or Blob; compression). diff_ids replaces the
    configuration's rootfs.diff_ids (for layers that do not match them), annotations are added
    to the manifest (to make it big)."""

    def __init__(self, layers, os_="linux", arch="amd64", variant=None, env=None, entrypoint=None,
                 cmd=None, workdir=None, user=None, labels=None, style="oci", diff_ids=None, annotations=None):
        self.layers = layers
        self.diff_ids, self.annotations = diff_ids, annotations
        self.os, self.arch, self.variant = os_, arch, variant
        self.cfg = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
        if entrypoint is not None:
            self.cfg["Entrypoint"] = entrypoint
        if cmd is not None:
            self.cfg["Cmd"] = cmd
        if workdir:
            self.cfg["WorkingDir"] = workdir
        if user:
            self.cfg["User"] = user
        if labels:
            self.cfg["Labels"] = labels
        self.style = style

    def build(self):
        """Returns (manifest bytes, media type, {digest: blob})."""
        blobs = {}
        descs, diff_ids = [], []
        for layer, comp in self.layers:
            if isinstance(layer, Blob):
                data, diff_id = layer.data, layer.diff_id
            else:
                raw = layer.tar() if isinstance(layer, Layer) else layer
                data, diff_id = compress(raw, comp), sha256(raw)
            d = sha256(data)
            blobs[d] = data
            diff_ids.append(diff_id)
            descs.append({"mediaType": LAYER_TYPES[(self.style, comp)], "digest": d, "size": len(data)})
        if self.diff_ids is not None:
            diff_ids = self.diff_ids
        config = {"architecture": self.arch, "os": self.os, "config": self.cfg,
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}, "created": "1970-01-01T00:00:00Z"}
        if self.variant:
            config["variant"] = self.variant
        cfg = json.dumps(config, sort_keys=True).encode()
        blobs[sha256(cfg)] = cfg
        mt = OCI_MANIFEST if self.style == "oci" else DOCKER_MANIFEST
        manifest = {"schemaVersion": 2, "mediaType": mt,
                    "config": {"mediaType": OCI_CONFIG if self.style == "oci" else DOCKER_CONFIG,
                               "digest": sha256(cfg), "size": len(cfg)},
                    "layers": descs}
        if self.annotations:
            manifest["annotations"] = self.annotations
        return json.dumps(manifest, sort_keys=True).encode(), mt, blobs

    def platform(self):
        p = {"os": self.os, "architecture": self.arch}
        if self.variant:
            p["variant"] = self.variant
        return p


def push_image(registry, repo, tag, image):
    """Pushes blobs and the manifest; returns (manifest digest, {digest: blob})."""
    body, mt, blobs = image.build()
    for d, data in blobs.items():
        registry.push_blob(repo, data, d)
    registry.push_manifest(repo, tag, body, mt)
    return sha256(body), blobs


def push_index(registry, repo, tag, images, style="oci"):
    """Pushes every image by digest and an index (OCI) or manifest list (Docker) under tag.
    Returns (index digest, [manifest digest per image])."""
    entries, digests = [], []
    for img in images:
        body, mt, blobs = img.build()
        for d, data in blobs.items():
            registry.push_blob(repo, data, d)
        d = sha256(body)
        registry.push_manifest(repo, d, body, mt)
        digests.append(d)
        entries.append({"mediaType": mt, "digest": d, "size": len(body), "platform": img.platform()})
    imt = OCI_INDEX if style == "oci" else DOCKER_LIST
    index = json.dumps({"schemaVersion": 2, "mediaType": imt, "manifests": entries}, sort_keys=True).encode()
    registry.push_manifest(repo, tag, index, imt)
    return sha256(index), digests


def busybox_image(**kw):
    return Image([(Layer().busybox(), "gzip")], entrypoint=["/bin/sh"], cmd=["-c", "echo hi"], **kw)
