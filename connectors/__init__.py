"""Connectors: one adapter per kind of partner system, behind one protocol (base.py)."""
