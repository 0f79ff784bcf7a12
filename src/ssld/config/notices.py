"""One-line notices for PaddleClas keys that load but mean nothing in ssld."""

from __future__ import annotations

import logging

log = logging.getLogger("ssld.config")
_seen: set[tuple[str, str]] = set()


def notice_ignored(group: str, keys: list[str]) -> None:
    """Log once per (section, key) that a PaddleClas key is accepted and ignored."""
    new = [k for k in keys if (group, k) not in _seen]
    _seen.update((group, k) for k in new)
    if new:
        log.info("config: %s key(s) %s accepted for PaddleClas compatibility and ignored", group, ", ".join(new))
