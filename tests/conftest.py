"""Shared test fixtures: paths to the shared corpus and small factories."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "documents"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real office documents of ../shared/corpus/documents (never copied into the repo)."""
    if not CORPUS.is_dir():
        pytest.fail(f"shared corpus missing at {CORPUS}")
    return CORPUS
