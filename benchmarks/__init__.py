"""alien-workqueue's measurement suite: `python -m benchmarks --help` (see BENCHMARKS.md)."""
