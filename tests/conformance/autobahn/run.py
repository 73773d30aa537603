"""Run Autobahn|Testsuite's fuzzing client against the server over ws:// and wss://.

    python tests/conformance/autobahn/run.py WSTEST [--cases 1.*,2.*,...] [--backend asyncio]

Starts ``hypercorn`` (the real CLI) with the echo application on two loopback ports, one plain
and one TLS (certificates from certs/make_certs.py), runs ``wstest -m fuzzingclient``, prints a
table of outcomes per case group and exits non-zero if any case FAILED (its behaviour or its
closing behaviour). OK, NON-STRICT and INFORMATIONAL are passes, as in Autobahn's own report;
the HTML report is left in the output directory for reading case by case.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def start_server(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-w",
            "0",
            "--app-dir",
            str(HERE),
            *args,
            "echo_app:app",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "Running on" in line:
            url = line.split("Running on ")[1].split()[0]
            return process, url.replace("http", "ws", 1)
    raise RuntimeError("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("wstest")
    parser.add_argument("--cases", default=",".join(f"{n}.*" for n in range(1, 11)))
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--out", default=str(ROOT / "tests" / "conformance" / "reports"))
    options = parser.parse_args()
    certs = Path(tempfile.mkdtemp(prefix="autobahn-certs-"))
    subprocess.run(
        [sys.executable, str(ROOT / "certs" / "make_certs.py"), str(certs)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    common = ["-k", options.backend, "--websocket-max-message-size", str(32 * 1024 * 1024)]
    plain, plain_url = start_server(["-b", "127.0.0.1:0", *common], env)
    secure, secure_url = start_server(
        [
            "-b",
            "127.0.0.1:0",
            "--certfile",
            str(certs / "server.pem"),
            "--keyfile",
            str(certs / "server-key.pem"),
            *common,
        ],
        env,
    )
    try:
        spec = {
            "outdir": options.out,
            "servers": [
                {"agent": "hypercorn-ws", "url": plain_url},
                {"agent": "hypercorn-wss", "url": secure_url},
            ],
            "cases": options.cases.split(","),
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = certs / "fuzzingclient.json"
        spec_path.write_text(json.dumps(spec))
        began = time.monotonic()
        subprocess.run(
            [options.wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
            check=True,
            cwd=certs,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "SSL_CERT_FILE": str(certs / "ca.pem")},
        )
        elapsed = time.monotonic() - began
    finally:
        for process in (plain, secure):
            process.terminate()
            process.wait(10)
    index = json.loads((Path(options.out) / "index.json").read_text())
    failed = []
    print(
        f"Autobahn|Testsuite fuzzingclient, cases {options.cases}, backend "
        f"{options.backend}, {elapsed:.0f} s"
    )
    for agent, cases in sorted(index.items()):
        by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for case, result in cases.items():
            outcome = result["behavior"]
            if result["behaviorClose"] not in PASSING and outcome in PASSING:
                outcome = "FAILED"
            by_group[case.split(".")[0]][outcome] += 1
            if outcome not in PASSING and outcome != "UNIMPLEMENTED":
                failed.append(f"{agent} {case}: {result['behavior']}/{result['behaviorClose']}")
        print(f"\n{agent}:")
        for group in sorted(by_group, key=int):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(by_group[group].items()))
            print(f"  {group:>3}.*  {counts}")
    print(f"\nreport: {Path(options.out) / 'index.html'}")
    if failed:
        print("\nFAILED cases:\n  " + "\n  ".join(failed))
        return 1
    print("\nno FAILED case")
    return 0


if __name__ == "__main__":
    sys.exit(main())
