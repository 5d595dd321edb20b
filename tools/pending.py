"""Rewrite PENDING in tests/schema/test_schema_contract.py to what the code does not build yet."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.schema.test_schema_contract as contract

contract.PENDING.clear()
names = sorted({p.split(":")[0].split("(")[0] for p in contract._missing(contract._schema())})
path = Path(contract.__file__)
body = "PENDING: set[str] = {\n" + "".join(f'    "{n}",\n' for n in names) + "}\n"
if not names:
    body = "PENDING: set[str] = set()\n"
text = re.sub(r"PENDING: set\[str\] = (\{\n(?:    .*\n)*\}|set\(\))\n", body, path.read_text())
path.write_text(text)
print(f"{len(names)} pending")
