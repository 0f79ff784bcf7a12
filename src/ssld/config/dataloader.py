"""The ``DataLoader`` section: dataset, sampler and loader of the Train and Eval splits."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
)

from ssld.config.section import Section

# PaddleClas datasets ssld does not read, and why: refused as "not supported", not as unknown names
DATASETS_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("Market1501", "MSMT17", "DukeMTMC", "VeriWild", "CompCars", "LogoDataset", "ICartoonDataset",
                     "FiveValidationDataset", "AdaFaceDataset"), "retrieval/recognition datasets are not implemented"),
    **dict.fromkeys(("MixDataset", "MultiScaleDataset", "CustomLabelDataset"), "not implemented"),
}


class DatasetConfig(Section):
    """A dataset: list file (``ImageNetDataset``/``ListDataset``: ``path label`` lines), ``ImageFolder``, or
    ``MultiLabelDataset`` (``path<TAB>0,1,0...`` lines, ssld.data.multilabel)."""

    ignored_group: ClassVar[str] = "dataset"
    name: Literal["ImageNetDataset", "ListDataset", "ImageFolder", "CommonDataset", "MultiLabelDataset"] = \
        "ImageNetDataset"

    @field_validator("name", mode="before")
    @classmethod
    def _paddle_dataset(cls, v: Any) -> Any:
        if v in DATASETS_UNSUPPORTED:
            raise ValueError(f"a PaddleClas dataset ssld does not support ({DATASETS_UNSUPPORTED[v]}), got {v!r}")
        return v

    image_root: str = "."
    cls_label_path: str | None = None
    label_ratio: bool = Field(False, description="MultiLabelDataset: labels carry each class's positive ratio "
                              "(the weight_ratio losses need it)")
    transform_ops: list[dict[str, Any] | str] = Field(default_factory=list)
    soft_labels: str | None = Field(None, description="soft-label store: offline teacher targets")
    cache_images: bool = Field(False, description="decode every image once into memory (small datasets only)")
    batch_transform_ops: list[dict[str, Any] | str] | None = Field(None, description="Mixup/CutMix operators")


class SamplerConfig(Section):
    """Batching (PaddleClas ``sampler``). ``batch_size`` is per process."""

    ignored_group: ClassVar[str] = "sampler"
    batch_size: int = Field(64, ge=1)
    drop_last: bool = False
    shuffle: bool = True


class LoaderConfig(Section):
    """DataLoader worker settings."""

    ignored_group: ClassVar[str] = "loader"
    num_workers: int = Field(2, ge=0)
    persistent_workers: bool = True
    pin_memory: bool | None = None
    prefetch_factor: int | None = None


class DataSplitConfig(Section):
    dataset: DatasetConfig
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    loader: LoaderConfig = Field(default_factory=LoaderConfig)


class DataLoaderConfig(Section):
    Train: DataSplitConfig | None = None
    Eval: DataSplitConfig | None = None
