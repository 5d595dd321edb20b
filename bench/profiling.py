"""cProfile of a server under load, summed where it can be trusted: own time.

With asyncio, cProfile counts every resume of a coroutine as a call, and a coroutine's
cumulative time adds up across its resumes, so call counts and cumulative times of
coroutines mean little. Own time (tottime) is still each function's own work, so the
summary is own time by package and the functions with the most own time, plus the
hub's own functions by cumulative time for orientation.
"""

from __future__ import annotations

import cProfile
import pstats
import re
from collections import Counter
from pathlib import Path

_ROOT = f"{Path(__file__).resolve().parent.parent}/"


def summary(profiler: cProfile.Profile, path: Path, top: int = 20) -> str:
    """Write the profile to `path`; a text summary of where the time went."""
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values()) or 1.0
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for (filename, line, name), (_, _, own, cumulative, _) in stats.items():
        where = f"{_short(filename)}:{line}({name})"
        packages[_package(filename)] += own
        functions[where] += own
        if filename.startswith(_ROOT) and "/bench/" not in filename:
            ours[where] = max(ours[where], cumulative)
    lines = [f"profile: {total:.2f} CPU s in the server's event-loop thread; {path}"]
    lines.append("own time by package:")
    lines += [f"  {t / total:6.1%}  {name}" for name, t in packages.most_common(12)]
    lines.append("functions with the most own time:")
    lines += [f"  {t / total:6.1%}  {name}" for name, t in functions.most_common(top)]
    lines.append("the project's functions by cumulative time (coroutines over-counted):")
    lines += [f"  {t:7.2f} s  {name}" for name, t in ours.most_common(top)]
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", _ROOT):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _package(filename: str) -> str:
    match = re.search(r"site-packages/([^/]+)", filename)
    if match:
        return match.group(1).removesuffix(".py")
    if filename.startswith(_ROOT):
        return filename[len(_ROOT) :].split("/", 1)[0]
    if filename.startswith("<") or filename == "~":
        return "builtins and C calls"
    return "stdlib"
