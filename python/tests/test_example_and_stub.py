"""The quick-start example runs and draws a PNG; the stub matches the compiled module."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_quickstart_example_writes_a_png(tmp_path):
    png = tmp_path / "quickstart.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(png)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    # σ = 0.1 is above the transition: the density sits in the flat region, not at x* = 0.
    mean_abs_x = float(done.stdout.split("<|x|> = ")[1].split(",")[0])
    assert 0.5 < mean_abs_x < 0.9


def test_stub_matches_the_compiled_module():
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "flatscape"],
        capture_output=True,
        text=True,
        cwd=ROOT / "python" / "tests",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
