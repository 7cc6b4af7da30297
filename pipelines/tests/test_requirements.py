from pathlib import Path

from mlp_pipeline.requirements import IMAGES, ROOT, export


def test_requirements_match_the_lock() -> None:
    for directory, package in IMAGES.items():
        path = ROOT / directory / "requirements.txt"
        assert path.read_text() == export(package), f"{path}: stale, run `make requirements`"


def test_requirements_pin_every_line() -> None:
    text = (ROOT / "components" / "train" / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in lines)
    assert "tensorflow-cpu==2.21.0" in lines and "kfp==2.17.0" in lines
    assert not any(line.startswith(("mlp-", "-e")) for line in lines)


def test_dockerfiles_install_their_requirements() -> None:
    for directory in IMAGES:
        dockerfile = (ROOT / directory / "Dockerfile").read_text()
        assert f"COPY {directory}/requirements.txt" in dockerfile, directory
        assert "USER 10001" in dockerfile and "EXPOSE" not in dockerfile, directory
        assert Path(ROOT / directory / "requirements.txt").is_file()


def test_dockerfiles_carry_the_shared_package_and_a_runnable_entrypoint() -> None:
    import re
    import subprocess
    import sys

    for directory in IMAGES:
        dockerfile = (ROOT / directory / "Dockerfile").read_text()
        assert "COPY components/common/mlp_common /app/mlp_common" in dockerfile, directory
        match = re.search(r'ENTRYPOINT \["python", "-m", "(mlp_\w+)"\]', dockerfile)
        assert match, directory
        assert f"/app/{match.group(1)}" in dockerfile, directory
        result = subprocess.run(
            [sys.executable, "-m", match.group(1), "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0 and "usage:" in result.stdout, (directory, result.stderr)
