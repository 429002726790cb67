"""Results: run directories and published scores into paper tables, plots and reproduction verdicts (README.md)."""
