"""Datasets: PaddleClas list files and folder-per-class trees, transform op mapping, resumable loading."""

from ssld.data.dataset import ImageListDataset, Skipped, collate, load_image
from ssld.data.lists import Sample, read_image_folder, read_list, write_list
from ssld.data.loader import build_dataset, build_loader
from ssld.data.sampler import ResumableSampler
from ssld.data.transforms import build_transform

__all__ = [
    "ImageListDataset", "ResumableSampler", "Sample", "Skipped", "build_dataset", "build_loader",
    "build_transform", "collate", "load_image", "read_image_folder", "read_list", "write_list",
]
