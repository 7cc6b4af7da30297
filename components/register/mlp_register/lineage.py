"""Lineage: what a version is serving as, why it got there, and what it was made from.

:func:`lineage` collects the chain serving -> gate -> training -> split -> data snapshot for one
version from its metadata, the registry pointers and the promotion log, plus its ancestry (the
production version each one was compared with, back to the first model); :func:`render_lineage`
prints it.
"""

from __future__ import annotations

from typing import Any

from mlp_common.registry import ModelRegistry


def lineage(registry: ModelRegistry, model: str, ref: int | str) -> dict[str, Any]:
    """The lineage record of version ``ref`` of ``model`` (JSON-ready)."""
    version = registry.get(model, ref)
    meta = version.metadata
    gate = meta.get("gate", {})
    dataset = meta.get("dataset", {})
    promotions = [e for e in registry.promotions(model) if e.get("to") == version.version]
    production = registry.pointer(model, "production")
    ancestry, parent = [], meta.get("parent")
    while parent is not None and parent not in ancestry and len(ancestry) < 50:
        ancestry.append(parent)
        parent = registry.get(model, parent).metadata.get("parent")
    return {
        "model": model,
        "version": version.version,
        "uri": version.uri,
        "serving": {
            "production": production == version.version,
            "production_version": production,
            "latest": registry.pointer(model, "latest") == version.version,
            "promotions": promotions,
        },
        "gate": {
            key: gate.get(key)
            for key in (
                "decision",
                "verdict",
                "reason",
                "metric",
                "test",
                "production_version",
                "counts",
                "p_value",
                "statistic",
                "interval",
                "alpha",
                "min_effect",
                "power",
                "method",
            )
        },
        "ancestry": ancestry,
        "split": meta.get("split"),
        "baseline": meta.get("baseline"),
        "training": {
            "trained_at": meta.get("trained_at"),
            "created_at": meta.get("created_at"),
            "parent": meta.get("parent"),
            "pipeline_run_id": meta.get("pipeline_run_id"),
            "code_version": meta.get("code_version"),
            "images": meta.get("images"),
            "image_digests": meta.get("image_digests"),
            "params": meta.get("params"),
            "training_key": meta.get("training_key"),
        },
        "data": {
            "snapshot_uri": dataset.get("snapshot_uri"),
            "content_hash": dataset.get("content_hash"),
            "files": dataset.get("files"),
            "rows": dataset.get("rows"),
            "source": dataset.get("source"),
            "query": dataset.get("query"),
        },
    }


def render_lineage(record: dict[str, Any]) -> str:
    """The chain as text, from serving back to the data snapshot."""
    serving, gate = record["serving"], record["gate"]
    training, data = record["training"], record["data"]
    baseline = (record.get("baseline") or {}).get("test") or {}
    if serving["production"]:
        state = "serving: production"
    elif serving["production_version"] is None:
        state = "not serving (no production version)"
    else:
        state = f"not serving (production is version {serving['production_version']})"
    lines = [f"{record['model']} version {record['version']}: {state}"]
    for entry in serving["promotions"]:
        before = entry.get("from")
        lines.append(
            f"  promoted   {entry.get('at')} from "
            f"{'no production version' if before is None else f'version {before}'} "
            f"({entry.get('reason') or 'no reason given'})"
        )
    interval, counts = gate.get("interval"), gate.get("counts") or {}
    numbers = (
        ""
        if gate.get("statistic") is None or interval is None
        else f"; {gate.get('test')}: {counts.get('candidate_only_right')} rows fixed, "
        f"{counts.get('production_only_right')} broken, p = {gate.get('p_value'):.4g} "
        f"(alpha {gate.get('alpha')}), {gate.get('metric')} difference {gate['statistic']:+.4f} "
        f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"
    )
    compared = gate.get("production_version")
    accuracy = baseline.get("accuracy")
    lines += [
        f"  gate       {gate.get('verdict') or gate.get('decision')}, compared with "
        f"{'no production version' if compared is None else f'production version {compared}'}"
        f"{numbers}",
        "  baseline   scikit-learn test accuracy "
        + (f"{accuracy:.4f}" if isinstance(accuracy, float) else "-"),
        f"  trained    {training.get('trained_at')} by run {training.get('pipeline_run_id')}, "
        f"code {training.get('code_version')}",
    ]
    ran = training.get("image_digests") or {}
    digests = ran.get("digests") or {}
    for step, image in sorted((training.get("images") or {}).items()):
        lines.append(
            f"  image      {step}: {image}" + (f" ran {digests[step]}" if digests.get(step) else "")
        )
    if ran.get("source") in ("local", "unavailable"):
        detail = ran.get("code_version") or ran.get("reason")
        lines.append(f"  ran        {ran['source']} ({detail})")
    params = training.get("params") or {}
    split = record.get("split") or {}
    test_rows = (split.get("rows") or {}).get("test", "-")
    chain = " <- ".join(f"v{n}" for n in [record["version"], *record.get("ancestry", [])])
    lines += [
        f"  ancestry   {chain} (each compared with the production version before it)",
        "  params     " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
        f"  split      by {split.get('key', '-')} (salt {split.get('salt', '-')}, "
        f"test {split.get('test_size', '-')}, val {split.get('val_size', '-')})",
        f"             test set {split.get('test_hash', '-')} ({test_rows} rows)",
        f"  data       {data.get('snapshot_uri')}",
        f"             {data.get('content_hash')} ({data.get('rows')} rows)",
    ]
    for name, digest in sorted((data.get("files") or {}).items()):
        lines.append(f"             {name} {digest}")
    lines.append(f"  source     {data.get('source')}")
    if data.get("query"):
        lines.append(f"  query      {data.get('query')}")
    return "\n".join(lines) + "\n"
