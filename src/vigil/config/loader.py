"""Loading the YAML file and turning every problem into a message that names the file,
the field path and the reason, so an operator can fix it without reading a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigil.config.model import VigilConfig


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class ConfigError(Exception):
    """Raised with every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn ('cameras', 1, 'main', 'url') into 'cameras[1](name=door).main.url'."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    out += f"(name={node['name']})"
            else:
                node = None
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(root)"


def parse_config(data: Any, source: str = "<config>") -> VigilConfig:
    if data is None:
        raise ConfigError([ConfigProblem(source, "(root)", "the file is empty")])
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(source, "(root)", "must be a mapping of sections (storage:, ...)")]
        )
    try:
        return VigilConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            reason = err["msg"]
            if err["type"] == "extra_forbidden":
                reason = "unknown key (not a Vigil option; check the spelling)"
            reason = reason.removeprefix("Value error, ")
            problems.append(ConfigProblem(source, _field_path(loc, data), reason))
        raise ConfigError(problems) from None


def load_config(path: str | Path) -> VigilConfig:
    """Read and validate the config file. Uses yaml.safe_load only: a config file must never
    be able to construct Python objects (Frigate CVE-2023-45672)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(p), "(file)", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(p), "(file)", f"cannot read: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [ConfigProblem(str(p), where or "(yaml)", f"invalid YAML: {problem}")]
        ) from None
    return parse_config(data, str(p))


def json_schema() -> dict[str, Any]:
    return VigilConfig.model_json_schema()
