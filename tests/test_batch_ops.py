"""PaddleClas batch_transform_ops (Mixup/CutMix through timm) in training, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.configs import supervised_config
from helpers.fashion_mnist import export_fashion_mnist

from ssld.config.schema import SSLDConfig
from ssld.engine import train
from ssld.engine.batch_ops import build_batch_transform
from ssld.errors import UserError


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=10, val_size=50, pool_size=20)


def test_mixup_mixes_images_and_makes_soft_targets() -> None:
    mix = build_batch_transform([{"MixupOperator": {"alpha": 0.4}}], num_classes=10, num_unlabeled=0, offline=False)
    images, labels = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    mixed, targets = mix(images.clone(), labels)
    assert targets.shape == (4, 10)
    assert torch.allclose(targets.sum(1), torch.ones(4))
    assert not torch.equal(mixed, images)
    _odd_images, odd_labels = mix(images[:3], labels[:3])  # timm mixes pairs: an odd batch passes through
    assert torch.equal(odd_labels, labels[:3])


def test_op_sampler_reads_both_operators_and_their_probabilities() -> None:
    ops = [{"OpSampler": {"MixupOperator": {"alpha": 0.8, "prob": 0.5}, "CutmixOperator": {"alpha": 1.0, "prob": 0.5}}}]
    assert build_batch_transform(ops, 10, 0, False) is not None


@pytest.mark.parametrize(("ops", "unlabeled", "offline", "message"), [
    ([{"MixupOperator": {"alpha": 0}}], 0, False, "alpha: must be > 0"),
    ([{"MixUp": {"alpha": 0.2}}], 0, False, "unknown batch operator 'MixUp'"),
    ([{"MixupOperator": {"alhpa": 0.2}}], 0, False, "unknown option(s) ['alhpa']"),
    ([{"MixupOperator": {"alpha": 0.2}}], 5, False, "5 unlabeled"),
    ([{"MixupOperator": {"alpha": 0.2}}], 0, True, "soft_labels"),
])
def test_bad_batch_ops_are_one_line(ops: list, unlabeled: int, offline: bool, message: str) -> None:
    with pytest.raises(UserError) as e:
        build_batch_transform(ops, 10, unlabeled, offline)
    assert message in str(e.value) and "batch_transform_ops" in str(e.value) and "\n" not in str(e.value)


def test_training_with_mixup_runs(data: Path, tmp_path: Path) -> None:
    raw = supervised_config(data, tmp_path / "out", epochs=1)
    raw["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] = [{"CutmixOperator": {"alpha": 1.0}}]
    report = train(SSLDConfig.model_validate(raw))
    assert report["steps"] == 4  # 100 labeled images in batches of 32, 32, 32 and 4, every one mixed
    assert 0.0 <= report["top1"] <= 1.0 and report["count"] == 50
