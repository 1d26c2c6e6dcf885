"""A training step (zero grad, loss, backward, optimiser step) captured once as a CUDA graph and replayed per batch.

The models of this zoo are small: on kgcn-music a KGCN step is a few hundred kernels of a few microseconds each, so
an eager step on a GPU is bound by Python and kernel launches (about 8 ms a step on an H200, slower than two CPU
cores). Replaying a captured graph launches the whole step at once. The step must then have a fixed shape and no
host synchronisation, so only the phases a model lists in ``graph_phases`` are graphed, and only their full-size
batches (an epoch's last, smaller batch runs eagerly); the optimiser must be built with ``capturable=True``.

Per phase (:class:`GraphedStep`): the first ``WARMUP`` batches of the fixed shape run eagerly on a side stream (so
cuBLAS and the caching allocator set up outside the capture), the next one is captured on that stream and replayed,
and every later one is copied into the captured input tensors and replayed. Each step is the same computation as an
eager step (the same batch, the same loss, the same update); only the kernel launches are batched. Should a capture
fail (an op that synchronises with the host, say), the phase falls back to eager steps for the rest of the run,
with one warning.

Two hazards, both met on an H200 (torch 2.11): Python's garbage collector freeing an earlier run's graph in the middle
of a capture invalidates it (``operation not permitted when stream is capturing``), so a capture collects first and
runs with the collector paused; and a failed capture leaves CUDA's default generator marked as capturing, after which
every eager random op (KGAT's dropout) fails ("Offset increment outside graph capture"), so a failure is followed by
one trivial capture, whose end clears that mark.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from typing import Any

import torch

log = logging.getLogger("kgrec.train")

WARMUP = 2


def tensors(batch: Any) -> list[torch.Tensor]:
    """The tensors of a batch dataclass (nested dataclasses flattened), in field order."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    if is_dataclass(batch):
        return [t for f in fields(batch) for t in tensors(getattr(batch, f.name))]
    raise TypeError(f"cannot graph a batch of type {type(batch).__name__}: expected a dataclass of tensors")


def cloned(batch: Any) -> Any:
    """A copy of a batch dataclass with tensors of its own (the graph's inputs, refilled before each replay)."""
    if isinstance(batch, torch.Tensor):
        return batch.clone()
    return replace(batch, **{f.name: cloned(getattr(batch, f.name)) for f in fields(batch)})


class GraphedStep:
    """One phase's training step as a CUDA graph. ``step(batch)`` returns the step's loss (a tensor on the
    device), or None when the batch is not of the captured shape or the phase fell back to eager steps, in which
    case the caller runs the step eagerly."""

    def __init__(self, name: str, loss: Callable[[Any], torch.Tensor], optimizer: torch.optim.Optimizer,
                 autocast: Callable[[], Any]) -> None:
        self.name, self.loss, self.optimizer, self.autocast = name, loss, optimizer, autocast
        self.shape: tuple[tuple[int, ...], ...] | None = None
        self.warm = 0
        self.failed = False
        self.stream = torch.cuda.Stream()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: Any = None
        self.static_loss: torch.Tensor | None = None
        self.replays = 0

    def step(self, batch: Any) -> torch.Tensor | None:
        shape = tuple(tuple(t.shape) for t in tensors(batch))
        if self.shape is None:
            self.shape = shape  # the epoch's first batch is a full one
        if self.failed or shape != self.shape:
            return None
        if self.warm < WARMUP:
            self.warm += 1
            return self._on_side_stream(lambda: self._eager(batch))
        if self.graph is None:
            return self._capture(batch)
        for target, source in zip(tensors(self.static), tensors(batch), strict=True):
            target.copy_(source)
        self.graph.replay()
        self.replays += 1
        return self.static_loss

    def _eager(self, batch: Any) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _on_side_stream(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(self.stream)
        return out

    def _capture(self, batch: Any) -> torch.Tensor | None:
        self.static = cloned(batch)  # the graph's inputs, refilled before each replay
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the grads from the graph's pool
        gc.collect()  # dead graphs of earlier runs go now, not in the middle of the capture
        gc.disable()
        try:
            self._on_side_stream(lambda: self._record(graph))
        except Exception as exc:  # noqa: BLE001  any capture failure leaves the phase to eager steps
            self.failed, self.static = True, None
            self.optimizer.zero_grad(set_to_none=True)
            log.warning("%s: CUDA graph capture failed (%s: %s); this phase trains eagerly", self.name,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            _clear_capture_state(self.stream)
            return None
        finally:
            gc.enable()
        self.graph = graph
        graph.replay()  # the capture recorded the step without running it
        self.replays += 1
        return self.static_loss

    def _record(self, graph: torch.cuda.CUDAGraph) -> torch.Tensor:
        with torch.cuda.graph(graph, stream=self.stream):
            with self.autocast():
                loss = self.loss(self.static)
            loss.backward()
            self.optimizer.step()
            self.static_loss = loss.detach()
        return self.static_loss


def _clear_capture_state(stream: torch.cuda.Stream) -> None:
    """After a failed capture: one trivial capture on ``stream``, whose end marks the default CUDA generator as no
    longer capturing (the failed capture never got that far)."""
    probe = torch.zeros(1, device=stream.device)
    try:
        torch.cuda.synchronize()
        with torch.cuda.graph(torch.cuda.CUDAGraph(), stream=stream):
            probe.add_(1)
    except Exception as exc:  # noqa: BLE001  say so: random ops may fail from here on
        log.warning("could not reset CUDA's capture state after a failed capture (%s): random ops such as dropout "
                    "may fail; train with train.cuda_graphs = false", exc)
