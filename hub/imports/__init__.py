"""Bulk accrual imports: a till's day of purchases, staged, then applied in chunks.

`rows` reads and checks lines (CSV, NDJSON, GraphQL rows); `service` opens jobs and stages
their rows; `apply` posts one chunk in one transaction, `decide` holds accruePoints' rules
for a chunk's lines and `repository` its queries; `worker` runs jobs under a lease and
resumes the ones a stopped process left; `bulk` holds the multi-row statements; `command`
is `hub import accruals`.
"""
