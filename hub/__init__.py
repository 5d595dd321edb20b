"""Points Exchange Hub: the core domain (ledger, exchange, mall) and its assembly."""
