"""The node's teardown leaves nothing behind: runs after every other test on the session's
node (same xdist group; pytest orders the files by name), stops it, and looks."""

from __future__ import annotations

from pathlib import Path

import pytest

from .kube import _cluster_script
from .node import NODE_STORES, NodeSession, node_traces, other_nodes_running, sysctls

pytestmark = pytest.mark.tools


def test_teardown_leaves_nothing_behind(node_session: NodeSession) -> None:
    cluster = node_session.cluster
    node = cluster.node
    assert node is not None
    up = node_traces(node, cluster.state)
    # The node is really there before: the check below could not pass by looking elsewhere.
    assert up["netns"] and up["links"] and up["routes"] and up["cgroups"] and up["processes"], up
    assert up["mounts"], "no pod volume or sandbox mount under the state directory"

    claimed = cluster.state / "node-store"  # the image store the node keeps, if it got it
    store = NODE_STORES / claimed.read_text().strip() if claimed.is_file() else None

    down = _cluster_script(cluster.state, "down")
    assert down.returncode == 0, down.stderr
    left = {what: found for what, found in node_traces(node, cluster.state).items() if found}
    running = [pid for pid in up["processes"] if Path(f"/proc/{pid}").exists()]
    if running:
        left["processes"] = running
    assert not left, f"the node's teardown left: {left}"
    if store is not None:
        # Handed back with images only: no container, sandbox or CRI record of one is kept.
        assert (store / ".handed-back").is_file(), f"{store}: not handed back"
        assert not (store / "io.containerd.grpc.v1.cri").exists(), f"{store}: CRI records kept"
    if not other_nodes_running(node):
        # The last node on the machine restores the sysctls the kubelet changed.
        assert sysctls() == node_session.sysctls_before
