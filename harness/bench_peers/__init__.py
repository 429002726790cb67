"""Timing drivers for `python -m harness.bench --against ...`, one per side (ours, official, sheeprl).

Each driver runs in its side's own virtual environment (`python -m harness.bench_peers.<side> POINT_JSON`
from the repository root) and speaks the line protocol of `protocol.py`. Only the standard library and
numpy may be imported at package level: the peers' venvs have nothing else of ours.
"""
