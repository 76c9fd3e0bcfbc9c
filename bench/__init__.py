"""Benchmarks of the notification socket against bare Channels and a raw websockets floor.

``python -m bench.run --full`` (``make bench``) or ``--quick`` (``make bench-quick``); see
docs/benchmarks.md.
"""
