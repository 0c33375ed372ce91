"""Datasets as uint8 tensors: locating raw files, splits, on-disk image sets, mixing."""
