"""The settings a command was given: a TOML file's, overridden by flags, each with where it came from."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from seccl.runs.config import RunConfig, config_from, read_toml


def given_config(
    config_file: Path | None, flags: Mapping[str, Any], allowed: Collection[str], *, command: str
) -> tuple[RunConfig, dict[str, str], list[str]]:
    """The config from ``config_file`` (its settings in ``allowed``) overridden by ``flags``; the
    settings given, each with where it came from ("" for a flag); and warnings (the file's
    settings that ``command``, such as `seccl run`, does not use)."""
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    warnings: list[str] = []
    if config_file is not None:
        source = f"config (--config) {config_file}"
        table = read_toml(config_file)
        config_from(table, source=source)  # the file's own errors, named by the file
        ignored = sorted(k for k in table if k not in allowed)
        if ignored:
            warnings.append(f"settings of {config_file} that `{command}` does not use: {', '.join(ignored)}")
        values.update({k: v for k, v in table.items() if k in allowed})
        given.update(dict.fromkeys(values, source))
    values.update(flags)
    given.update(dict.fromkeys(flags, ""))
    return config_from(values), given, warnings
