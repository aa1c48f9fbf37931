"""Shared fixtures for the analytics tests: sample videos and synthetic scenes."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = DATA / "vtest.avi"
TREE = DATA / "tree.avi"
GROUND_TRUTH = Path(__file__).resolve().parents[1] / "data" / "analytics"


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    if not VTEST.is_file():
        pytest.fail(
            f"{VTEST} not installed (Debian package opencv-doc): run scripts/setup.sh",
            pytrace=False,
        )
    return VTEST


@pytest.fixture(scope="session")
def tree_path() -> Path:
    if not TREE.is_file():
        pytest.fail(
            f"{TREE} not installed (Debian package opencv-doc): run scripts/setup.sh", pytrace=False
        )
    return TREE
