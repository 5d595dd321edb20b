"""Nightly settlement: netting in SQL, statements, their workflow, CSV export, and the
runs (by hand for a date, or nightly under a lease)."""
