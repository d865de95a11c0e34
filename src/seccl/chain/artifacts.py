"""Loads the committed, generated contract artifacts (ABI and bytecode) shipped with the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_NAMES = ("BulletinBoard", "Consensus", "GramGateConsensus")


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, creation and runtime bytecode, the byte ranges of the
    runtime code its constructor fills with immutables, and the compiler that produced them."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    immutable_ranges: tuple[tuple[int, int], ...]
    compiler: dict[str, Any]


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (one of :data:`CONTRACT_NAMES`)."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    text = resources.files("seccl.chain").joinpath("artifacts", f"{name}.json").read_text()
    data = json.loads(text)
    ranges = tuple(
        sorted((r["start"], r["length"]) for refs in data["immutableReferences"].values() for r in refs)
    )
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        immutable_ranges=ranges,
        compiler=data["compiler"],
    )
