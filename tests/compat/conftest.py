"""Starts the built worker and mock upstreams once for the SDK compatibility tests."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gateway():
    proc = subprocess.Popen(
        ["node", str(ROOT / "tests/support/serve.mjs")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("tests/support/serve.mjs exited before it was ready")
        yield json.loads(line)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
