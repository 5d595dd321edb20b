"""Benchmarks: each hot path measured against a baseline taken in the same run.

Run them all with `python -m bench` (or `make bench`), one with `python -m bench ledger`.
Figures are printed as ratios and written as JSON under bench/results/; nothing here is
asserted, since an absolute figure says more about the machine than about the hub.
"""
