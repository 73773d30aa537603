"""Machine instructions per request of ``micro_core.py`` (or ``micro_uvicorn.py``), counted by
valgrind's cachegrind: one run of 3,000 requests and one of 13,000, the difference over
10,000. Unlike a timing it does not move with the machine's load, so it can tell a 2% change
apart on a noisy VM; it does not see what an instruction costs (cache misses, mispredicted
branches), so a timing under wrk still has the last word.

    python bench/instructions.py [--uvicorn] [micro_core.py's options, e.g. --h2]

Run it with the interpreter (virtualenv) to measure; needs valgrind.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHORT, LONG = 3000, 13000


def instructions(script: Path, requests: int, options: list[str]) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(script),
        "--runs",
        "1",
        "--requests",
        str(requests),
        *options,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    options = sys.argv[1:]
    script = HERE / "micro_core.py"
    if "--uvicorn" in options:
        options.remove("--uvicorn")
        script = HERE / "micro_uvicorn.py"
    short = instructions(script, SHORT, options)
    long = instructions(script, LONG, options)
    per_request = (long - short) / (LONG - SHORT)
    print(f"{per_request:,.0f} instructions per request ({script.name} {' '.join(options)})")


if __name__ == "__main__":
    main()
