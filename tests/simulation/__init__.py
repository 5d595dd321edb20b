"""The seeded fault simulation (`make simulate SEED=... OPS=...`; a short run in `make test`)."""
