"""`hub import accruals FILE --program P` as a process: the same job, applied in the CLI's
own process with a progress bar; each rejected line printed, then the counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import balances, verify_ledger
from tests.imports.conftest import JOB, World, csv_of

HUB = [sys.executable, "-m", "hub"]


def _hub(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": db_url,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_IMPORT_CHUNK_ROWS": "50",
    }
    return subprocess.run([*HUB, *args], env=env, capture_output=True, text=True, timeout=300)


async def test_a_csv_file_imports_from_the_command_line(
    world: World, db_url: str, tmp_path: Path
) -> None:
    rows = [[world.members[i % 4], f"F-{i}", "10.00"] for i in range(400)]
    rows[7] = [world.members[0], "F-3", "10.00"]  # repeats line 5's order
    rows[8] = ["mbr_nobody", "F-8", "10.00"]
    path = tmp_path / "till.csv"
    path.write_bytes(csv_of(rows))
    done = _hub(db_url, "import", "accruals", str(path), "--program", "JADE")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "line 9: ALREADY_EXISTS Order 'F-3' has already earned points in JADE."
    assert out[1] == "line 10: NOT_FOUND No member has id 'mbr_nobody'."
    assert out[-1].endswith("COMPLETED: 398 accepted, 2 rejected of 400 lines; 3,980 points"), out[
        -1
    ]
    assert "importing" in done.stderr  # the progress bar
    job_id = out[-1].split()[1]
    job = (await world.api.gql(JOB, {"id": job_id}, key=world.jade_key))["importJob"]
    assert (job["status"], job["accepted"], job["rejected"]) == ("COMPLETED", 398, 2)
    total = sum([(await balances(world.api, m))["JADE"] for m in world.members])
    assert total == 3_980
    assert await verify_ledger(db_url) == []
    verified = _hub(db_url, "verify")
    assert verified.returncode == 0, verified.stdout


async def test_ndjson_by_extension_and_refusals(world: World, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "till.ndjson"
    path.write_text(
        json.dumps({"externalRef": "J-2", "orderRef": "D-1", "amount": "8"}) + "\n",
        encoding="utf-8",
    )
    done = _hub(db_url, "import", "accruals", str(path), "--program", "JADE")
    assert done.returncode == 0, done.stderr
    assert "1 accepted, 0 rejected" in done.stdout
    assert (await balances(world.api, world.members[2]))["JADE"] == 8
    unknown = _hub(db_url, "import", "accruals", str(path), "--program", "NOPE")
    assert unknown.returncode == 2
    assert "NOT_FOUND" in unknown.stderr
    missing = _hub(db_url, "import", "accruals", str(tmp_path / "none.csv"), "--program", "JADE")
    assert missing.returncode == 2
    header = tmp_path / "bad.csv"
    header.write_text("who,what\nx,y\n", encoding="utf-8")
    bad = _hub(db_url, "import", "accruals", str(header), "--program", "JADE")
    assert bad.returncode == 2
    assert "header" in bad.stderr
