"""Build every image of `builds.images` in platform.yaml from its generated Dockerfile, unchanged.

`scripts/build-images.sh` (`make images`) installs the builder and runs this with the venv's
Python (it reads the spec through platformgen's loader). For each image:

- the base named in `builds.baseImage` (python:3.11-slim-bookworm) is a local stand-in built
  from the same distribution's packages (Debian bookworm's python3 through mmdebstrap), tagged
  with the name the Dockerfiles' FROM resolves to, because no registry is reachable here;
- `buildah bud --pull-never` builds the Dockerfile as generated, from the repository root, with
  the host's CA bundle and pip configuration mounted read-only for the build only (package
  registries are reached through a TLS-inspecting proxy whose CA the host trusts); afterwards
  the image is checked to hold neither;
- the image is tagged with every tag the spec gives its repository (defaults.imageTag and each
  environment's), exported as an OCI archive (for a node's containerd), and its digest, size and
  build time are recorded.

Everything is cached per content: the key of an image is a hash of its Dockerfile, every file
its COPY lines send (minus .dockerignore), and the base image's ID, so a warm run builds
nothing. The images stay in buildah's storage (tagged `<repository>:build-<key>` too, so
checkouts with different content do not evict each other); archives and records live in
`$MLP_IMAGES_CACHE` (default ~/.cache/ml-platform-images/<key>/), and this checkout's list of
images in `.run/images/images.json`. `scripts/image_registry.py` serves them to a node.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(
    os.environ.get("MLP_IMAGES_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-platform-images"
)
MANIFEST = ROOT / ".run" / "images" / "images.json"
KEY_LABEL = "io.github.ml-platform.build-key"
"""Label holding an image's content key (set with `buildah bud --label`, not in the Dockerfile)."""
BUILD_MOUNTS = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pip.conf"))
"""Host files mounted read-only into the build (only the ones that exist)."""
sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_plan import (  # noqa: E402
    BASE_ENV,
    BASE_PACKAGES,
    Image,
    ImagesError,
    base_key,
    base_reference,
    content_key,
    plan,
)

# --- the builder (thin shell over buildah) ----------------------------------------------------


def say(text: str) -> None:
    print(f"images: {text}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> str:
    """Run a command; its stdout, or ImagesError with its output on failure."""
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise ImagesError(f"{shlex.join(argv)} failed ({result.returncode}):\n" + "\n".join(output))
    return result.stdout


def stream(argv: Sequence[str], log: Path) -> None:
    """Run a long command with its output in `log` (the tail on failure)."""
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {shlex.join(argv)}\n")
        handle.flush()
        code = subprocess.run(list(argv), stdout=handle, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        raise ImagesError(f"{shlex.join(argv[:3])} ... failed ({code}); {log}:\n" + "\n".join(tail))


def image_inspect(reference: str) -> dict[str, Any] | None:
    result = subprocess.run(
        ["buildah", "inspect", "--type", "image", reference], capture_output=True, text=True
    )
    if result.returncode != 0:
        return None
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def image_labels(reference: str) -> dict[str, str]:
    document = image_inspect(reference)
    if document is None:
        return {}
    return dict((document.get("OCIv1", {}).get("config") or {}).get("Labels") or {})


def image_id(reference: str) -> str:
    document = image_inspect(reference)
    if document is None:
        raise ImagesError(f"{reference}: no such image in buildah's storage")
    return str(document["FromImageID"])


def image_size(reference: str) -> int:
    """Bytes of the image's layers, uncompressed (as buildah's storage holds them)."""
    document = image_inspect(reference)
    if document is None:
        raise ImagesError(f"{reference}: no such image in buildah's storage")
    manifest = json.loads(document["Manifest"])
    return sum(int(layer["size"]) for layer in manifest["layers"])


@contextlib.contextmanager
def mounted(reference: str) -> Iterator[Path]:
    """The root filesystem of a throw-away working container of `reference`."""
    container = run(["buildah", "from", "--pull-never", reference]).strip()
    try:
        yield Path(run(["buildah", "mount", container]).strip())
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


def ensure_base(base_image: str, log_dir: Path) -> str:
    """Build the stand-in for `base_image` unless an image of the same recipe exists; its ID."""
    name, suite, python = base_reference(base_image)
    key = base_key(name, suite)
    if image_labels(name).get(KEY_LABEL) == key:
        return image_id(name)
    say(f"building the local stand-in for {base_image}: Debian {suite}'s python3 (mmdebstrap)")
    started = time.monotonic()
    log = log_dir / "base.log"
    with tempfile.TemporaryDirectory(prefix="mlp-base-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        stream(
            ["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
             "--dpkgopt=path-exclude=/usr/share/locale/*", suite, str(tarball)],
            log,
        )  # fmt: skip
        container = run(["buildah", "from", "scratch"]).strip()
        try:
            root = Path(run(["buildah", "mount", container]).strip())
            stream(["tar", "-C", str(root), "-xpf", str(tarball)], log)
            (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
            (root / "usr/local/bin/python").symlink_to("/usr/bin/python3")
            run(["buildah", "umount", container])
            config = ["buildah", "config", "--cmd", "python3", "--label", f"{KEY_LABEL}={key}",
                      "--label", f"io.github.ml-platform.stands-in-for={base_image}"]  # fmt: skip
            for variable, value in BASE_ENV.items():
                config += ["--env", f"{variable}={value}"]
            run([*config, container])
            run(["buildah", "commit", "--rm", "--quiet", container, name])
        except BaseException:
            subprocess.run(["buildah", "rm", container], capture_output=True)
            raise
    version = run_in(name, ["python", "--version"])
    if f"Python {python}." not in version:
        subprocess.run(["buildah", "rmi", name], capture_output=True)
        raise ImagesError(f"the stand-in for {base_image} has {version.strip()}, not {python}")
    say(f"base {name} built in {time.monotonic() - started:.0f} s ({version.strip()})")
    return image_id(name)


def run_in(reference: str, command: Sequence[str]) -> str:
    """Run `command` in a throw-away container of `reference`; its stdout."""
    container = run(["buildah", "from", "--pull-never", reference]).strip()
    try:
        return run(["buildah", "run", "--isolation", "chroot", container, "--", *command])
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


@dataclass
class Record:
    folder: str
    repository: str
    package: str
    references: list[str]
    key: str
    digest: str
    """The manifest digest of the exported archive (what a registry would serve)."""
    image_id: str
    size_bytes: int
    """Uncompressed size in buildah's storage."""
    archive: str
    archive_bytes: int
    build_seconds: float
    """Wall time of the build that made it (see cache_hits)."""
    base: str
    base_id: str
    cached: bool = False
    """True when this run found the image in the cache and built nothing."""
    run_steps_cached: int = -1
    """RUN steps buildah took from its layer cache when it was built (0: a cold build, every
    `pip install` ran; -1: unknown)."""


def bud_argv(
    image: Image, code_version: str, tag: str, labels: dict[str, str] | None = None
) -> list[str]:
    """`buildah bud` of the image's Dockerfile as generated, from the repository root: no
    pull (the base is local), buildah's layer cache, the host's CA bundle and pip.conf
    mounted read-only for the build only."""
    argv = ["nice", "buildah", "bud", "--pull-never", "--layers", "--isolation", "chroot",
            "--network", "host", "--file", str(ROOT / image.dockerfile), "--build-arg",
            f"CODE_VERSION={code_version}", "--tag", tag]  # fmt: skip
    for name, value in (labels or {}).items():
        argv += ["--label", f"{name}={value}"]
    for mount in BUILD_MOUNTS:
        if mount.is_file():
            argv += ["--volume", f"{mount}:{mount}:ro"]
    return [*argv, str(ROOT)]


def build(image: Image, base_id: str, base: str, log_dir: Path, code_version: str) -> Record:
    key = content_key(ROOT, image, base_id)
    # One build per content key: another checkout's build of the same image with other
    # content (a cold build for minutes) does not hold up finding this one in the cache.
    with _lock(f"{image.slug}-{key[:16]}"):
        return _build(image, key, base_id, base, log_dir, code_version)


def _build(
    image: Image, key: str, base_id: str, base: str, log_dir: Path, code_version: str
) -> Record:
    entry = CACHE / key
    record_path = entry / "build.json"
    keyed = f"{image.repository}:build-{key[:16]}"
    if record_path.is_file() and image_labels(keyed).get(KEY_LABEL) == key:
        stored = json.loads(record_path.read_text(encoding="utf-8"))
        record = Record(**{k: v for k, v in stored.items() if k in Record.__dataclass_fields__})
        if Path(record.archive).is_file():
            for reference in image.references:
                run(["buildah", "tag", keyed, reference])
            record.references, record.cached = image.references, True
            return record
    say(f"building {image.dockerfile} -> {', '.join(image.references)}")
    log = log_dir / f"{image.slug}.log"
    log.write_text("", encoding="utf-8")
    argv = bud_argv(image, code_version, keyed, labels={KEY_LABEL: key})
    started = time.monotonic()
    stream(argv, log)
    seconds = time.monotonic() - started
    cached_runs = run_steps_cached(log.read_text(encoding="utf-8", errors="replace"))
    check_no_build_mounts(keyed, base)
    for reference in image.references:
        run(["buildah", "tag", keyed, reference])
    entry.mkdir(parents=True, exist_ok=True)
    archive = entry / "image.oci.tar"
    digest_file = entry / "digest"
    partial = entry / "image.oci.tar.partial"
    partial.unlink(missing_ok=True)
    run(["buildah", "push", "--quiet", "--digestfile", str(digest_file), keyed,
         f"oci-archive:{partial}:{image.references[0]}"])  # fmt: skip
    partial.rename(archive)
    record = Record(
        folder=image.folder,
        repository=image.repository,
        package=image.package,
        references=image.references,
        key=key,
        digest=digest_file.read_text(encoding="utf-8").strip(),
        image_id=image_id(keyed),
        size_bytes=image_size(keyed),
        archive=str(archive),
        archive_bytes=archive.stat().st_size,
        build_seconds=round(seconds, 1),
        run_steps_cached=cached_runs,
        base=base,
        base_id=base_id,
    )
    record_path.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    say(f"built {image.folder} in {seconds:.0f} s, {record.size_bytes / 1e6:.0f} MB")
    return record


def run_steps_cached(log: str) -> int:
    """How many of a `buildah bud` log's RUN steps came from the layer cache."""
    lines = log.splitlines()
    return sum(
        1
        for index, line in enumerate(lines[:-1])
        if re.search(r"STEP \d+/\d+: RUN ", line) and lines[index + 1].startswith("--> Using cache")
    )


def check_no_build_mounts(reference: str, base: str) -> None:
    """Nothing of the host files mounted for the build stayed in the image: at their own paths
    the image has what the base has (Debian's CA bundle, no /etc/pip.conf), and no file
    anywhere in it has a mounted file's content (a RUN step that copied one)."""
    hosts = {mount: mount.read_bytes() for mount in BUILD_MOUNTS if mount.is_file()}
    with mounted(base) as base_root, mounted(reference) as root:
        for mount in BUILD_MOUNTS:
            inside, original = root / mount.relative_to("/"), base_root / mount.relative_to("/")
            theirs = inside.read_bytes() if inside.is_file() else None
            ours = original.read_bytes() if original.is_file() else None
            if theirs != ours:
                raise ImagesError(
                    f"{reference}: {mount} differs from the base's: the host file mounted for "
                    "the build stayed in the image"
                )
        sizes = {len(content): mount for mount, content in hosts.items()}
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    if path.is_symlink() or path.stat().st_size not in sizes:
                        continue
                    mount = sizes[path.stat().st_size]
                    if path.read_bytes() == hosts[mount] and hosts[mount] != _read(
                        base_root / path.relative_to(root)
                    ):
                        raise ImagesError(
                            f"{reference}: /{path.relative_to(root)} is a copy of the host's "
                            f"{mount}, which was mounted for the build only"
                        )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def code_version() -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def build_all(spec_path: Path, only: Sequence[str]) -> list[Record]:
    from platformgen.errors import PlatformgenError
    from platformgen.spec.load import load_spec

    try:
        spec = load_spec(spec_path)
    except PlatformgenError as err:
        raise ImagesError(str(err)) from err
    images = plan(spec)
    if only:
        unknown = sorted(set(only) - {image.folder for image in images})
        if unknown:
            raise ImagesError(f"not in builds.images: {', '.join(unknown)}")
        images = [image for image in images if image.folder in only]
    if not images:
        raise ImagesError(f"{spec_path}: builds.images is empty: nothing to build")
    log_dir = MANIFEST.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    base = spec.builds.base_image
    with _lock("base"):
        base_id = ensure_base(base, log_dir)
    version = code_version()
    records = [build(image, base_id, base, log_dir, version) for image in images]
    manifest = {"base": base, "base_id": base_id, "images": [asdict(r) for r in records]}
    if not only:
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return records


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """One build of a thing at a time on this machine (checkouts share buildah's storage and
    the cache); builds of different images may run side by side."""
    import fcntl

    with (CACHE / f".lock-{name}").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def clean() -> list[str]:
    """Remove every image this script built (they carry KEY_LABEL: the base, every build),
    the layer cache of their builds (dangling intermediate images), the archives and
    records. Returns the removed image IDs."""
    import shutil

    listing = run(["buildah", "images", "--all", "--noheading", "--no-trunc", "--format",
                   "{{.ID}}", "--filter", f"label={KEY_LABEL}"]).split()  # fmt: skip
    removed = sorted(set(listing))
    if removed:
        run(["buildah", "rmi", "--force", *removed])
    subprocess.run(["buildah", "rmi", "--prune"], capture_output=True, check=False)
    shutil.rmtree(CACHE, ignore_errors=True)
    MANIFEST.unlink(missing_ok=True)
    return removed


def manifest() -> dict[str, Any]:
    """This checkout's images (`.run/images/images.json`, written by `build`)."""
    if not MANIFEST.is_file():
        raise ImagesError(f"{MANIFEST}: missing; run `make images`")
    document: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/images.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build (or find cached) every image")
    build_command.add_argument("--spec", type=Path, default=ROOT / "platform.yaml")
    build_command.add_argument(
        "folders", nargs="*", help="only these keys of builds.images (default: all)"
    )
    listing = commands.add_parser("list", help="print the images the spec builds (JSON)")
    listing.add_argument("--spec", type=Path, default=ROOT / "platform.yaml")
    commands.add_parser("clean", help="remove the built images, their layer cache, archives")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            from platformgen.spec.load import load_spec

            print(json.dumps([asdict(i) | {"references": i.references}
                              for i in plan(load_spec(args.spec))], indent=2))  # fmt: skip
        elif args.command == "clean":
            say(f"removed {len(clean())} images and {CACHE}")
        else:
            for record in build_all(args.spec, args.folders):
                how = "cached" if record.cached else f"built in {record.build_seconds:.0f} s"
                print(f"{record.folder:<22} {record.size_bytes / 1e6:6.0f} MB  {how:<16} "
                      f"{record.digest}")  # fmt: skip
    except ImagesError as err:
        say(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
