"""Every example runs, within a time bound, and prints its headline figure."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_example_runs(path):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    if "max abs error vs float64 numpy" in r.stdout:  # the numerical examples print their error
        assert "x (" in r.stdout, r.stdout
        err = float(r.stdout.split("max abs error vs float64 numpy: ")[1].split()[0])
        assert err < 1e-4, r.stdout
    else:  # the others check themselves and say so
        assert "\nok: " in "\n" + r.stdout, r.stdout
