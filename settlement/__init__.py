"""Nightly settlement: netting in SQL, statements, their workflow, CSV export, the scheduler."""
