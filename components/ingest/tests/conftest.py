from collections.abc import Iterator
from pathlib import Path

import pytest
from mlp_common.testing import s3_server


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLP_CACHE_DIR", str(tmp_path / "cache"))
    with s3_server("data") as endpoint:
        yield endpoint
