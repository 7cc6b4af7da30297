"""The spec never holds secret values: credential-looking `env`/`config` values are refused.

Two general signs, either is enough:
- the variable or key names a credential (PASSWORD, SECRET, TOKEN, API_KEY, ACCESS_KEY,
  PRIVATE_KEY, CREDENTIAL(S), ...), unless it names a file, path, directory or the name of
  a Secret (`..._FILE`, `..._PATH`, `..._DIR`, `..._NAME`, `..._REF`);
- the value has the shape of a credential: a URL with a password, a PEM private key, a JWT,
  or a well-known token format (AWS access key id, GitHub, Slack, Google API key, OpenAI-style
  `sk-`), or a long high-entropy string.

Credentials come from existing Secrets through `secretEnv` (name and key), never from here.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from platformgen.spec.model import PlatformSpec

Problem = tuple[str, str]

CREDENTIAL_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
    r"CREDENTIALS?|AUTH_?KEY|SESSION_?KEY|CLIENT_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY)",
    re.IGNORECASE,
)
NOT_A_VALUE = re.compile(r"(_FILE|_PATH|_DIR|_NAME|_REF|_URL|_URI|_ENDPOINT)$", re.IGNORECASE)
CREDENTIAL_VALUE = (
    (
        re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE),
        "a URL with a password",
    ),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "a JWT"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "a Google API key"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "an API secret key"),
)
HIGH_ENTROPY = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")
"""A long token-like string (checked for entropy: hashes of letters and digits mixed)."""


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def credential_reason(name: str, value: str) -> str | None:
    """Why `name=value` looks like a credential, or None."""
    for pattern, what in CREDENTIAL_VALUE:
        if pattern.search(value):
            return f"the value looks like {what}"
    if value and CREDENTIAL_NAME.search(name) and not NOT_A_VALUE.search(name):
        return f"{name!r} names a credential"
    if (
        HIGH_ENTROPY.match(value)
        and _entropy(value) > 4.0
        and any(ch.isdigit() for ch in value)
        and any(ch.isupper() for ch in value)
        and any(ch.islower() for ch in value)
    ):
        return "the value looks like a secret token (long and random)"
    return None


def check_credentials(spec: PlatformSpec) -> Iterator[Problem]:
    """Every env/config value in the spec that looks like a credential."""
    where: list[tuple[str, dict[str, str]]] = []
    for name, c in spec.components.items():
        where += [(f"components.{name}.env", c.env), (f"components.{name}.config", c.config)]
    for env_name, env in spec.environments.items():
        for name, override in env.components.items():
            where.append((f"environments.{env_name}.components.{name}.env", override.env or {}))
    for name, pipeline in spec.pipelines.items():
        for map_name, data in pipeline.config_maps.items():
            where.append((f"pipelines.{name}.configMaps.{map_name}", data))
    for path, values in where:
        for key, value in values.items():
            reason = credential_reason(key, value)
            if reason:
                yield (
                    f"{path}.{key}",
                    f"{reason}: the spec never holds secret values; reference an existing "
                    "Secret with secretEnv: {secret: <name>, key: <key>}",
                )
