"""A throwaway image engine, registry and base image for building the services for real.

Shared by the real-build test tier (``tests/image``) and the image benchmark
(``bench/images.py``) so both measure the same thing:

* the Docker engine: ``$DOCKER_HOST`` when it is set, otherwise a private ``dockerd``
  (Debian's ``docker.io``) with its data and exec roots in a temporary directory, no
  bridge and no iptables rules;
* a registry standing in for quay.io: ``docker-registry`` (Debian's ``docker-registry``)
  on 127.0.0.1:5000 with its own config and storage, unless one already answers there; a
  machine-wide lock (:data:`REGISTRY_LOCK`) makes a second test run wait rather than share a
  registry the first one stops when it finishes;
* a Debian bookworm Python base made with ``debootstrap`` and imported as
  ``127.0.0.1:5000/ecosystem-appeng/python-base:bookworm``; the rootfs tarball is cached
  under ``${XDG_CACHE_HOME:-~/.cache}/hardened-k8s/``.

Builds go through :func:`hardened_k8s.build.build_spec` and
:func:`hardened_k8s.build.docker_build_kwargs`, the functions the Pulumi image component
uses, with two differences forced by this engine: the classic builder (the ``docker``
package cannot drive BuildKit) and, when the host has a CA bundle, that bundle appended to
the build context as ``build-ca.pem`` for the builder stage (see the Containerfiles).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import docker
import docker.errors
import docker.utils

from hardened_k8s.build import BuildSpec, build_spec, docker_build_kwargs

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO_ROOT / "services"
REGISTRY_ADDR = "127.0.0.1:5000"
ORG = "ecosystem-appeng"
REGISTRY = f"{REGISTRY_ADDR}/{ORG}"
BASE_IMAGE = f"{REGISTRY}/python-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
CA_IN_CONTEXT = "build-ca.pem"
"""Name the host CA bundle gets in the build context; only the builder stage copies it."""
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
TOOLS = {
    "dockerd": "Debian package docker.io",
    "docker-registry": "Debian package docker-registry",
    "debootstrap": "Debian package debootstrap",
}


@dataclass(frozen=True)
class Service:
    """A service directory under ``services/`` and the image it is published as."""

    directory: str
    image: str
    port: int

    @property
    def context(self) -> Path:
        return SERVICES_DIR / self.directory


SERVICES = (
    Service("store-api", "store-inventory", 8000),
    Service("mcp-server", "mcp-store-inventory", 8080),
)


CODE_DIRS = ("/app", "/opt/venv")
"""Where the images keep their code and virtualenv (or node_modules tree): root-owned, read-only."""

NOT_ROOT_OWNED_OR_WRITABLE = (
    "n=0; for d in " + " ".join(CODE_DIRS) + "; do [ -d $d ] || continue; "
    "n=$((n + $(find $d -xdev | wc -l))); "
    "find $d -xdev ! -type l \\( ! -user 0 -o -writable \\) -print | head -5; done; echo checked=$n"
)
"""A ``sh -c`` probe run as the image's user: up to five paths under :data:`CODE_DIRS` that are
not root's or that the user may write, then ``checked=<entries looked at>``."""


def ownership_problems(probe_output: str) -> tuple[list[str], int]:
    """The offending paths and the number of entries checked, from the output of
    :data:`NOT_ROOT_OWNED_OR_WRITABLE`."""
    *found, checked = probe_output.split()
    return found, int(checked.removeprefix("checked="))


ARBITRARY_UID = "1000680000"
"""A UID as OpenShift's restricted-v2 assigns one: from the namespace's range, no passwd entry."""


class EngineError(RuntimeError):
    """The engine, registry or a build failed; the message carries the relevant log."""


def missing_tools() -> list[str]:
    """The host tools the harness needs and cannot find, with the package providing each.

    dockerd is not needed when ``DOCKER_HOST`` points at a running engine.
    """
    needed = dict(TOOLS)
    if os.environ.get("DOCKER_HOST"):
        needed.pop("dockerd")
    return [f"{tool} ({pkg})" for tool, pkg in needed.items() if shutil.which(tool) is None]


def host_ca_bundle() -> Path | None:
    """The CA bundle this host trusts (it may include a TLS-intercepting proxy's CA)."""
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def git_revision() -> str:
    """HEAD of the repository, or a fixed placeholder SHA outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "0" * 40


def service_spec(
    service: Service,
    *,
    version: str = "0.1.0",
    revision: str | None = None,
    **kwargs: Any,
) -> BuildSpec:
    """The build of ``service`` against the local registry and base image."""
    return build_spec(
        service.image,
        context=kwargs.pop("context", service.context),
        registry=REGISTRY,
        version=version,
        revision=revision or git_revision(),
        base_image=BASE_IMAGE,
        source="https://quay.io/repository/ecosystem-appeng/" + service.image,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise EngineError(f"{what} not ready after {timeout:.0f}s\n{tail}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


REGISTRY_LOCK = Path("/run/lock/hardened-k8s-registry.lock")
"""Held by every process with an open :class:`Harness`: the registry's address is machine-wide,
and a harness that found another process's registry answering would lose it mid-run when that
process closed its harness."""

_registry_users = 0
_registry_lock_fd: int | None = None


def _hold_registry() -> None:
    """Take the machine-wide registry lock for this process (re-entrant within it: the image
    and cluster tiers of one session share one registry)."""
    global _registry_users, _registry_lock_fd
    if _registry_users == 0:
        fd = os.open(REGISTRY_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another test run's registry to finish ({REGISTRY_LOCK})", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _registry_lock_fd = fd
    _registry_users += 1


def _release_registry() -> None:
    global _registry_users, _registry_lock_fd
    _registry_users -= 1
    if _registry_users == 0 and _registry_lock_fd is not None:
        os.close(_registry_lock_fd)  # releases the flock
        _registry_lock_fd = None


@dataclass
class BuildResult:
    image_id: str
    seconds: float
    log: str


@dataclass
class Harness:
    """Engine + registry + base image; use as a context manager, everything started stops."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hk8s-images-")))
    client: docker.DockerClient = field(init=False)
    ca_bundle: Path | None = field(default_factory=host_ca_bundle)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _containers: list[str] = field(default_factory=list)
    started_engine: bool = False
    started_registry: bool = False
    _holds_registry: bool = False

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        _hold_registry()
        self._holds_registry = True
        try:
            self._start_engine()
            self._start_registry()
            ensure_base_image(self.client)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        client = getattr(self, "client", None)
        for cid in self._containers:
            with contextlib.suppress(Exception):
                if client is not None:
                    client.api.remove_container(cid, force=True)
        self._containers.clear()
        if client is not None:
            client.close()
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        _unmount_under(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._holds_registry:
            self._holds_registry = False
            _release_registry()

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._procs.append(proc)
        return proc, log

    def _start_engine(self) -> None:
        if os.environ.get("DOCKER_HOST"):
            self.client = docker.from_env(timeout=600)
            self.client.ping()
            return
        root = self.workdir / "engine"
        root.mkdir()
        (root / "daemon.json").write_text("{}")
        sock = root / "docker.sock"
        proc, log = self._spawn(
            "dockerd",
            [
                "dockerd",
                "--config-file", str(root / "daemon.json"),
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "dockerd.pid"),
                "-H", f"unix://{sock}",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-masq=false",
                "--storage-driver", "overlay2",
            ],
        )  # fmt: skip
        self.started_engine = True

        def up() -> bool:
            if proc.poll() is not None:
                raise EngineError("dockerd exited:\n" + log.read_text(errors="replace")[-3000:])
            return sock.exists() and _http_ok_unix(sock)

        _wait("dockerd", up, 60, log)
        self.client = docker.DockerClient(base_url=f"unix://{sock}", timeout=600)
        self.client.ping()

    def _start_registry(self) -> None:
        if _http_ok(f"http://{REGISTRY_ADDR}/v2/"):
            return  # a registry already serves this address (e.g. started by CI)
        root = self.workdir / "registry"
        (root / "data").mkdir(parents=True)
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {REGISTRY_ADDR}\n"
        )
        proc, log = self._spawn("registry", ["docker-registry", "serve", str(config)])
        self.started_registry = True

        def up() -> bool:
            if proc.poll() is not None:
                raise EngineError("docker-registry exited:\n" + log.read_text(errors="replace"))
            return _http_ok(f"http://{REGISTRY_ADDR}/v2/")

        _wait("docker-registry", up, 30, log)

    # -- builds ----------------------------------------------------------------------------
    def build(self, spec: BuildSpec, *, nocache: bool = False, keep_cache_from: bool = False) -> BuildResult:
        """Build ``spec`` with the engine, tag every ref, and return the image id and log.

        ``cache_from`` is dropped unless ``keep_cache_from``: the classic builder takes cache
        only from images descending from a ``cache_from`` image when any is given, whereas
        BuildKit (what the Pulumi component uses) adds them to its local cache. Dropping them
        gives this engine BuildKit's behaviour for the local cache.
        """
        kwargs = docker_build_kwargs(spec)
        if not keep_cache_from:
            kwargs["cache_from"] = []
        context = Path(str(kwargs.pop("path")))
        dockerfile = str(kwargs["dockerfile"])
        fileobj = build_context(context, dockerfile, self.ca_bundle)
        started = time.monotonic()
        lines: list[str] = []
        image_id = ""
        try:
            for chunk in self.client.api.build(
                fileobj=fileobj,
                custom_context=True,
                network_mode="host",
                rm=True,
                forcerm=True,
                pull=False,
                nocache=nocache,
                decode=True,
                **kwargs,
            ):
                if "stream" in chunk:
                    lines.append(chunk["stream"])
                if "error" in chunk:
                    raise EngineError(
                        f"build of {spec.primary_ref} failed: {chunk['error']}\n" + "".join(lines)[-6000:]
                    )
                aux = chunk.get("aux") or {}
                if "ID" in aux:
                    image_id = aux["ID"]
        finally:
            fileobj.close()
        seconds = time.monotonic() - started
        if not image_id:
            raise EngineError(f"build of {spec.primary_ref} reported no image\n" + "".join(lines)[-6000:])
        for ref in spec.refs:
            repo, tag = ref.rsplit(":", 1)
            self.client.api.tag(image_id, repo, tag)
        return BuildResult(image_id=image_id, seconds=seconds, log="".join(lines))

    def push(self, spec: BuildSpec) -> dict[str, str]:
        """Push every tag of ``spec``; returns ``{ref: digest the push reported}``."""
        digests: dict[str, str] = {}
        for ref in spec.refs:
            repo, tag = ref.rsplit(":", 1)
            for chunk in self.client.api.push(repo, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise EngineError(f"push of {ref} failed: {chunk['error']}")
                aux = chunk.get("aux") or {}
                if "Digest" in aux:
                    digests[ref] = aux["Digest"]
            if ref not in digests:
                raise EngineError(f"push of {ref} reported no digest")
        return digests

    def image_size(self, ref: str) -> int:
        size: int = self.client.api.inspect_image(ref)["Size"]
        return size

    # -- containers ------------------------------------------------------------------------
    def run(self, image: str, command: list[str] | None = None, **kwargs: Any) -> Any:
        """Start a container on the host network (this engine has no bridge); removed at close."""
        container = self.client.containers.run(image, command, detach=True, network_mode="host", **kwargs)
        self._containers.append(container.id)
        return container

    def output(self, image: str, command: list[str], **kwargs: Any) -> str:
        """Run ``command`` to completion in a fresh container; its stdout as text."""
        container = self.run(image, command, **kwargs)
        try:
            result = container.wait(timeout=60)
            out: bytes = container.logs(stdout=True, stderr=False)
            if result.get("StatusCode") != 0:
                err = container.logs(stdout=False, stderr=True).decode(errors="replace")
                raise EngineError(f"{command} in {image} exited {result.get('StatusCode')}: {err}")
        finally:
            self.remove(container)
        return out.decode()

    def remove(self, container: Any) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
        if container.id in self._containers:
            self._containers.remove(container.id)

    def image_files(self, ref: str) -> Iterator[tuple[str, tarfile.TarFile, tarfile.TarInfo]]:
        """Every entry of every layer of ``ref`` (as ``docker save`` exports it)."""
        saved = self.workdir / "saved.tar"
        with saved.open("wb") as out:
            for chunk in self.client.api.get_image(ref):
                out.write(chunk)
        try:
            with tarfile.open(saved) as outer:
                manifest = json.load(_member(outer, "manifest.json"))
                for layer in manifest[0]["Layers"]:
                    with tarfile.open(fileobj=_member(outer, layer)) as inner:
                        for info in inner:
                            yield layer, inner, info
        finally:
            saved.unlink(missing_ok=True)


def _unmount_under(root: Path) -> None:
    """Unmount what a stopped dockerd left mounted under ``root`` (its default netns file)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def _member(archive: tarfile.TarFile, name: str) -> io.BufferedReader:
    f = archive.extractfile(name)
    if f is None:
        raise EngineError(f"{name} missing from saved image")
    return f  # type: ignore[return-value]


def _http_ok_unix(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in s.recv(64).split(b"\r\n", 1)[0] + b" "
    except OSError:
        return False


def build_context(context: Path, dockerfile: str, ca_bundle: Path | None) -> Any:
    """The context tar ``docker build`` would send (``.dockerignore`` applied), plus the CA.

    The CA bundle is added under :data:`CA_IN_CONTEXT`, which every ``.dockerignore``
    excludes, so it only ever reaches a build this way.
    """
    exclude: list[str] = []
    ignore = context / ".dockerignore"
    if ignore.exists():
        exclude = [
            line.strip()
            for line in ignore.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    # The Containerfile is always sent, whatever .dockerignore says (as docker build does).
    fileobj = docker.utils.tar(str(context), exclude=exclude, dockerfile=(dockerfile, None))
    if ca_bundle is not None:
        with tarfile.open(fileobj=fileobj, mode="a") as tar:
            info = tar.gettarinfo(str(ca_bundle), arcname=CA_IN_CONTEXT)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with ca_bundle.open("rb") as f:
                tar.addfile(info, f)
    fileobj.seek(0)
    return fileobj


# -- base image ------------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardened-k8s"


def base_rootfs_tarball() -> Path:
    """A minbase Debian bookworm rootfs with Python, as a tarball; made once and cached."""
    recipe = ("bookworm", DEBIAN_MIRROR, *BASE_PACKAGES, SLIM_DPKG_EXCLUDES, *SLIM_APT_CONFIG.values())
    key = hashlib.sha256("\n".join(recipe).encode()).hexdigest()
    tarball = cache_dir() / f"python-base-bookworm-{key[:12]}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hk8s-rootfs-"))
    rootfs = work / "rootfs"
    try:
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            raise EngineError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        _minimize(rootfs)
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
        )
        partial.replace(tarball)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    return tarball


# What Debian's official "-slim" images (the base of python:*-slim) configure: dpkg skips
# docs, man pages and translations, and apt keeps no package or index caches. The local base
# gets the same, so its stages weigh what the production base's would.
SLIM_DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
"""
_APT_CLEAN = (
    "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"
)
SLIM_APT_CONFIG = {
    "docker-clean": (
        f'DPkg::Post-Invoke {{ "{_APT_CLEAN}"; }};\n'
        f'APT::Update::Post-Invoke {{ "{_APT_CLEAN}"; }};\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
}


def _minimize(rootfs: Path) -> None:
    """Apply :data:`SLIM_DPKG_EXCLUDES` and :data:`SLIM_APT_CONFIG`, and drop caches."""
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG_EXCLUDES)
    for name, text in SLIM_APT_CONFIG.items():
        (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
    share = rootfs / "usr/share"
    for sub in ("groff", "info", "linda", "lintian", "man"):
        if (share / sub).is_dir():
            shutil.rmtree(share / sub)
    for entry in (share / "locale").glob("*"):
        if entry.name == "locale.alias":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    doc = share / "doc"
    for path in sorted(doc.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        keep = path.name == "copyright" and path.parent.parent == doc
        if path.is_dir() and not path.is_symlink():
            if path.parent != doc and not any(path.iterdir()):
                path.rmdir()
        elif not keep:
            path.unlink()
    for cache in ("var/cache/apt", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / cache, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)


def ensure_base_image(client: docker.DockerClient) -> str:
    """Import the cached rootfs as :data:`BASE_IMAGE` unless the engine already has it."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        image_id: str = client.api.inspect_image(BASE_IMAGE)["Id"]
        return image_id
    tarball = base_rootfs_tarball()
    repo, tag = BASE_IMAGE.rsplit(":", 1)
    client.api.import_image_from_file(
        str(tarball),
        repository=repo,
        tag=tag,
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
        ],
    )
    image_id = client.api.inspect_image(BASE_IMAGE)["Id"]
    return image_id


# -- registry --------------------------------------------------------------------------------
def registry_digest(ref: str) -> str:
    """The digest the registry serves for ``ref`` (``Docker-Content-Digest`` of a v2 HEAD)."""
    host, rest = ref.split("/", 1)
    name, tag = rest.rsplit(":", 1)
    req = urllib.request.Request(
        f"http://{host}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_V2},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        digest: str = resp.headers["Docker-Content-Digest"]
    return digest


def skopeo_digest(ref: str) -> str | None:
    """The digest ``skopeo inspect`` reads for ``ref``, or None without skopeo."""
    if shutil.which("skopeo") is None:
        return None
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{ref}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


def with_context(spec: BuildSpec, context: Path) -> BuildSpec:
    """``spec`` built from another directory (a scratch copy the benchmark edits)."""
    return replace(spec, context=str(context))
