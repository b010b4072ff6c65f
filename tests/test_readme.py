"""README.md's quickstart, run as a reader would copy it: its ```python and ```sh
blocks, in order, in a fresh empty directory, with the venv's ``artifacts`` on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_blocks_run_in_an_empty_directory(tmp_path: Path) -> None:
    blocks = re.findall(
        r"^```(python|sh)\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M
    )
    assert [lang for lang, _ in blocks] == ["python", "sh"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTS_")}
    bin_dir = str(Path(sys.executable).parent)  # the venv's `artifacts` command
    assert (Path(bin_dir) / "artifacts").exists(), "no artifacts command: pip install -e ."
    env.update(PYTHONPATH=str(ROOT), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    for lang, code in blocks:
        command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
        proc = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{lang} block failed:\n{code}\n{proc.stdout}{proc.stderr}"
    # The store is the directory's own (no .artifacts/ above it was used).
    assert (tmp_path / ".artifacts").is_dir() and (tmp_path / "elsewhere" / ".artifacts").is_dir()
    versions = subprocess.run(
        ["artifacts", "versions", "my_artifact", "--project", "demo"],
        cwd=tmp_path / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert versions.returncode == 0, versions.stderr
    assert [line.split()[0] for line in versions.stdout.splitlines()[1:]] == ["v2", "v1", "v0"]
