"""Tiers: a program's ladder (`ladder`), where each member stands on it (`standing`), and
the nightly review that lowers members who no longer qualify (`review`).

A tier qualifies on the money a member spent at the program in the trailing 12 months
and the number of those purchases (`AccrualAmount`, one per accrual). A member moves up
as soon as an accrual qualifies and down only at the nightly review; between the two the
member keeps the higher of the tier held and the tier qualified for.
"""
