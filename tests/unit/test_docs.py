"""The README's configuration reference is the model's, and every environment variable the
appliance files use is a real setting."""

from __future__ import annotations

import re
from pathlib import Path

from hypercorn.__main__ import cli_fields
from hypercorn.settings import TABLE_END, TABLE_START, reference_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_matches_the_config_model() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index(TABLE_START) + len(TABLE_START) : readme.index(TABLE_END)]
    assert table.strip() == reference_table(), "run `make docs` to regenerate the table"
    documented = {match.lower() for match in re.findall(r"`HYPERCORN_([A-Z0-9_]+)`", table)}
    assert documented == set(cli_fields())


def test_env_vars_in_appliance_files_exist() -> None:
    known = {f"HYPERCORN_{name.upper()}" for name in cli_fields()} | {"HYPERCORN_CONFIG"}
    known.add("HYPERCORN_COMPILE")  # the build's switch (setup.py), not a setting
    for path in [
        ROOT / "Dockerfile",
        ROOT / "compose.yaml",
        *sorted((ROOT / "deploy" / "kubernetes").glob("*.y*ml")),
    ]:
        for variable in re.findall(r"\bHYPERCORN_[A-Z0-9_]+", path.read_text()):
            assert variable in known, f"{path.name} uses unknown {variable}"
