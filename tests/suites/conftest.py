"""Load a suite exactly as its YAML file states it, with optional protocol/env changes for a test."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from suites.base import Suite

SUITE_DIR = Path(__file__).resolve().parents[2] / "harness" / "config" / "suite"


def _load_suite(name: str, protocol: dict[str, Any] | None = None, env: dict[str, Any] | None = None) -> Suite:
    suite = Suite.from_config(yaml.safe_load((SUITE_DIR / f"{name}.yaml").read_text()))
    return dataclasses.replace(
        suite,
        protocol=dataclasses.replace(suite.protocol, **(protocol or {})),
        env={**suite.env, **(env or {})},
    )


@pytest.fixture
def load_suite():
    """`load_suite(name, protocol={...}, env={...})` -> Suite."""
    return _load_suite
