"""Benchmarks: the pipeline against the naive approach on the local stack (``make bench``).

Not collected by ``make test`` (pytest ``norecursedirs``). Keep this module free of imports: the
cold-start children run ``python -m tests.bench.child`` and must not pay for anything here.
"""
