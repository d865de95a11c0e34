"""Loads the committed, generated contract artifacts (ABI and bytecode) shipped with the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_NAMES = ("BulletinBoard", "Consensus")


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, creation bytecode and the compiler that produced them."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler: dict[str, Any]


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (one of :data:`CONTRACT_NAMES`)."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    text = resources.files("seccl.chain").joinpath("artifacts", f"{name}.json").read_text()
    data = json.loads(text)
    return Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"], compiler=data["compiler"])
