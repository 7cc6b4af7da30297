"""A registry for the images `make images` built, as a node pulls them.

The CNCF distribution registry (`.tools/bin/registry`, `make registry-tools`) runs on a local
address: loopback, or the host's end of a node's network namespace, never a public interface.
`push` copies each image's OCI archive into it unchanged (the registry serves the recorded
digest), and `hosts` writes containerd `hosts.toml` files (for the CRI registry
`config_path`) that send the images' registry host, e.g. registry.example.com, to it: pods pull
the images under the names the manifests use, `imagePullPolicy: Always` included, and nothing
is fetched from outside.

    python scripts/image_registry.py up --state DIR --port N [--host ADDRESS]
    python scripts/image_registry.py push --registry ADDRESS:N
    python scripts/image_registry.py hosts --certs-dir DIR --registry ADDRESS:N
    python scripts/image_registry.py down --state DIR
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from images import ROOT, ImagesError, manifest, run, say  # noqa: E402

REGISTRY_CONFIG = """\
# Written by scripts/image_registry.py: the images of `make images`, for a node.
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: "{host}:{port}"}}
"""


def registry_up(state: Path, port: int, host: str = "127.0.0.1") -> str:
    """Start the distribution registry (.tools/bin/registry, `make registry-tools`) on
    `host`:`port` with its storage, log and PID file in `state`; its address. `host` is
    loopback, or the host's end of a node's network namespace (never a public interface)."""
    binary = ROOT / ".tools" / "bin" / "registry"
    if not binary.exists():
        raise ImagesError(f"{binary}: missing; run `make registry-tools`")
    state.mkdir(parents=True, exist_ok=True)
    config = state / "config.yml"
    text = REGISTRY_CONFIG.format(root=state / "storage", host=host, port=port)
    config.write_text(text, encoding="utf-8")
    log = state / "registry.log"
    # Started in the background of a shell that exits at once: the registry is nobody's child
    # here, like every process scripts/cluster.sh starts, and is stopped by its PID file.
    pid = run(["sh", "-c", '"$0" serve "$1" >>"$2" 2>&1 </dev/null & echo $!',
               str(binary), str(config), str(log)]).strip()  # fmt: skip
    (state / "registry.pid").write_text(f"{pid}\n", encoding="utf-8")
    address = f"{host}:{port}"
    deadline = time.monotonic() + 30
    while True:
        if not Path(f"/proc/{pid}").exists():
            log_text = log.read_text(errors="replace")[-2000:]
            raise ImagesError(f"the registry exited:\n{log_text}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
                if response.status == 200:
                    return address
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ImagesError(f"the registry did not answer on {address} within 30 s")
        time.sleep(0.2)


def registry_down(state: Path) -> None:
    """Stop the registry started in `state` (by its PID) and delete its storage."""
    pid_file = state / "registry.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text(encoding="utf-8"))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink()
    shutil.rmtree(state / "storage", ignore_errors=True)


def registry_path(reference: str) -> tuple[str, str]:
    """`host[:port]/path:tag` -> (host, `path:tag`); Docker Hub names have no host part."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", reference


def push(records: Sequence[dict[str, Any]], address: str) -> dict[str, str]:
    """Copy every archive to the registry at `address` under each of its references' paths
    (`registry.example.com/mlp/x:t` -> `<address>/mlp/x:t`), unchanged (the digest is
    checked); the pushed references by original reference. The archive is read once, for the
    first reference (skopeo unpacks an `oci-archive` whole for each copy); the other tags are
    copied within the registry, where every blob already is."""
    pushed = {}
    with tempfile.TemporaryDirectory(prefix="mlp-push-") as scratch:
        digest_file = Path(scratch) / "digest"
        for record in records:
            source = f"oci-archive:{record['archive']}"
            for reference in record["references"]:
                target = f"{address}/{registry_path(reference)[1]}"
                run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                     "--dest-tls-verify=false", "--digestfile", str(digest_file), source,
                     f"docker://{target}"])  # fmt: skip
                digest = digest_file.read_text(encoding="utf-8").strip()
                if digest != record["digest"]:
                    raise ImagesError(f"{target}: pushed as {digest}, built as {record['digest']}")
                pushed[reference] = target
                source = f"docker://{target}"
    return pushed


def write_hosts(certs_dir: Path, references: Sequence[str], address: str) -> list[Path]:
    """containerd `hosts.toml` files in `certs_dir` (its CRI registry `config_path`) that make
    every registry host of `references` resolve and pull from the registry at `address`
    only: the images keep the names the manifests use, and nothing is fetched from outside."""
    written = []
    for host in sorted({registry_path(reference)[0] for reference in references}):
        path = certs_dir / host / "hosts.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# Written by scripts/image_registry.py: {host} images come from a local registry.\n"
            f'server = "http://{address}"\n\n'
            f'[host."http://{address}"]\n'
            '  capabilities = ["pull", "resolve"]\n',
            encoding="utf-8",
        )
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/image_registry.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a registry (PID file in --state)")
    up.add_argument("--state", type=Path, required=True)
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    down = commands.add_parser("down", help="stop it by PID, delete its storage")
    down.add_argument("--state", type=Path, required=True)
    push_command = commands.add_parser("push", help="copy the built images to a registry")
    push_command.add_argument("--registry", required=True, help="host:port (plain HTTP)")
    hosts = commands.add_parser("hosts", help="containerd hosts.toml: pull from a registry")
    hosts.add_argument("--certs-dir", type=Path, required=True, help="containerd config_path")
    hosts.add_argument("--registry", required=True, help="host:port (plain HTTP)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(registry_up(args.state, args.port, args.host))
        elif args.command == "down":
            registry_down(args.state)
        elif args.command == "push":
            for reference, target in push(manifest()["images"], args.registry).items():
                print(f"{reference} -> {target}")
        else:
            references = [r for image in manifest()["images"] for r in image["references"]]
            for path in write_hosts(args.certs_dir, references, args.registry):
                print(path)
    except ImagesError as err:
        say(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
