"""Raw per-repetition figures, kept as JSON so the report can be rebuilt without a rerun."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    # scenario -> metric -> server -> [one value per repetition]
    values: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, scenario: str, metric: str, server: str, value: float) -> None:
        self.values.setdefault(scenario, {}).setdefault(metric, {}).setdefault(server, []).append(value)

    def get(self, scenario: str, metric: str, server: str) -> list[float]:
        return self.values.get(scenario, {}).get(metric, {}).get(server, [])

    def note(self, scenario: str, text: str) -> None:
        if text not in self.notes.setdefault(scenario, []):
            self.notes[scenario].append(text)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": self.meta, "values": self.values, "notes": self.notes}, indent=1))

    @classmethod
    def load(cls, path: Path) -> "Results":
        raw = json.loads(path.read_text())
        return cls(raw["meta"], raw["values"], raw["notes"])


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ratios(a: list[float], b: list[float]) -> list[float]:
    """Per-repetition ratios a[i]/b[i]: figures of one repetition were taken minutes apart at
    most, so pairing them cancels most of the drift of a shared machine."""
    return [x / y for x, y in zip(a, b) if y]
