"""Shared type aliases for the models (one place, as PyKEEN does)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

FloatTensor = Tensor
LongTensor = Tensor
BoolTensor = Tensor
Split = Literal["train", "valid", "test", "cold_test"]
Protocol = Literal["ctr", "ranking"]
