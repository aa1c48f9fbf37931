"""Generates docs/configuration.md from the model, so the documentation of every option is
the same text the validator and the JSON schema use and can never fall behind."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from vigil.config.model import VigilConfig

INTRO = """# Configuration

Vigil reads one YAML file (`vigil run -c vigil.yaml`). Unknown keys are errors, every
problem is reported with the file, the field path and the reason (`vigil config check
FILE`, exit status 2), and the JSON schema is in `config/vigil.schema.json`
(`vigil config schema`). A complete example: `config/vigil.example.yaml`.

Sizes accept units (`500MB`, `2GiB`, `1TB`); durations accept `90s`, `15m`, `72h`, `7d`.
Camera passwords may be given inline or, better, as `password_env: VARIABLE` so the file
can be shared without the secret; either way they are never logged.

This page is generated from the configuration model (`vigil config docs`); a test fails
when it is out of date.
"""


def _type_name(info: FieldInfo) -> str:
    return _ann_name(info.annotation)


def _ann_name(ann: Any) -> str:
    args = [a for a in (get_args(ann) or ()) if a is not type(None)]
    origin = get_origin(ann)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in get_args(ann))
    if origin is list:
        return f"list of {_ann_name(args[0])}"
    if args and len(args) < len(get_args(ann)):  # Optional
        return _ann_name(args[0]) if len(args) == 1 else " or ".join(map(_ann_name, args))
    if origin is Annotated:
        return _ann_name(get_args(ann)[0])
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    name = getattr(ann, "__name__", str(ann))
    return names.get(name, name)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "`[]`"
    d = info.default
    if isinstance(d, BaseModel):
        return "see below"
    return f"`{json.dumps(d, default=str)}`"


def _walk(model: type[BaseModel], prefix: str, out: list[str], seen: set[str]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        desc = (info.description or "").strip().replace("|", "/")
        rows.append((path, _type_name(info), _default(info), desc))
        for sub in _submodels(info.annotation):
            nested.append((path + ("[]" if _type_name(info).startswith("list") else ""), sub))
    doc = (model.__doc__ or "").strip()
    out.append(f"\n## `{prefix.rstrip('.') or '(root)'}`\n")
    if doc:
        out.append(" ".join(doc.split()) + "\n")
    out.append("| option | type | default | meaning |\n|---|---|---|---|")
    for r in rows:
        out.append(f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} |")
    for path, sub in nested:
        key = f"{path}:{sub.__name__}"
        if key not in seen:
            seen.add(key)
            _walk(sub, path + ".", out, seen)


def _submodels(ann: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    for arg in getattr(ann, "__args__", ()) or ():
        found.extend(_submodels(arg))
    return found


def render() -> str:
    out = [INTRO]
    _walk(VigilConfig, "", out, set())
    return "\n".join(out) + "\n"
