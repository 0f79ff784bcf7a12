"""'Did you mean' hints for unknown config keys."""

from __future__ import annotations

import difflib

from pydantic import BaseModel

from ssld.config.schema import SSLDConfig


def _section_model(parent: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = SSLDConfig
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            # inside dict[str, ModelSpec] (Arch.models[i].<name>): the value type is ModelSpec
            from ssld.config.schema import ModelSpec

            model = ModelSpec if model.__name__ == "ArchConfig" or model is ModelSpec else None
            continue
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            from ssld.config.schema import ModelSpec

            model = ModelSpec if str(part) == "models" else None
        else:
            model = candidates[0]
    return model


def suggest_key(parent: tuple[str | int, ...], key: str) -> str | None:
    """The closest valid key in the section at ``parent``, if any is close."""
    model = _section_model(parent)
    if model is None:
        return None
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None
