"""PaddleClas-compatible YAML configs: schema, loading, ``-o`` overrides, one-line errors."""

from ssld.config.loader import load_config
from ssld.config.schema import ArchConfig, ModelSpec, SSLDConfig

__all__ = ["ArchConfig", "ModelSpec", "SSLDConfig", "load_config"]
