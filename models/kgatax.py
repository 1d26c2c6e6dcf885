"""KGAT-AX: KGAT with auxiliary information fused into the entities through holographic embeddings.

Wu, "An efficient recommendation model based on Knowledge Graph Attention-assisted Network (KGAT-AX)" (seed
``001_*``), §3.4: auxiliary attributes form auxiliary triples whose holographic embedding (Nickel, Rosasco, Poggio,
"Holographic Embeddings of Knowledge Graphs", AAAI 2016: the circular correlation ``a ⋆ b``) is combined by a
Hadamard product with the relation and fused into the head and tail entities; then KGAT's attentive propagation
runs as before (:class:`models.kgat.KGAT`).

The paper gives no equations for the fusion. The choices made here, each ablated in the benchmark:

- Auxiliary triples are the KG triples whose tail is an attribute value: an entity that is never the head of a
  triple (a genre, a country, a year bucket, a tag; on kgcn-music every tail). They stay in the CKG as well.
- The message of an auxiliary triple ``(h, r, a)`` is ``e_r ⊙ (e_h ⋆ e_a)`` (``composition="holographic"``), or,
  for the ablation, ``e_r ⊙ e_a`` (``composition="hadamard"``: the attribute without the holographic binding).
- Each entity that takes part in auxiliary triples, as head or as tail, gets the mean of their messages through
  a learned map: ``ẽ = e + W_f mean(messages)``, ``W_f`` initialised small (Xavier, gain 0.1) so training starts
  near KGAT; ``e_r`` here is a relation table of its own, entity-sized (KGAT's relation vectors live in the
  TransR space).
  ``fusion="none"`` switches the fusion off: the model is then exactly KGAT (same code path, the ablation's
  baseline).
- The fused vectors ``ẽ`` replace ``e^(0)`` in the attention and the propagation; the TransR loss of the KG phase
  keeps the raw embeddings (the paper's embedding module is KGAT's).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models import nn as kgnn
from models.graph import KnowledgeGraph
from models.kgat import KGAT
from models.typing import FloatTensor, LongTensor

COMPOSITIONS = ("holographic", "hadamard")
FUSE_GAIN = 0.1  # W_f starts small: training starts near KGAT
FUSIONS = ("mean", "none")


def circular_correlation(a: FloatTensor, b: FloatTensor) -> FloatTensor:
    """``(a ⋆ b)_k = sum_i a_i b_(i + k) mod d`` (HolE): ``irfft(conj(rfft(a)) * rfft(b))``. a, b: (N, d) -> (N, d).

    On the CPU by FFT. On CUDA the transforms are products with the real DFT matrices (:func:`dft_correlation`):
    cuFFT refused the amazon-book-scale fusion (2.5M rows of 64, and chunks of 65,536 rows: CUFFT_INVALID_SIZE on an
    H200), while a (N, 64) x (64, 33) product is cuBLAS's bread and butter (and can be captured in a CUDA graph).
    """
    if a.is_cuda:
        return dft_correlation(a, b)
    d = a.shape[-1]
    return torch.fft.irfft(torch.conj(torch.fft.rfft(a, dim=-1)) * torch.fft.rfft(b, dim=-1), n=d, dim=-1)


def dft_correlation(a: FloatTensor, b: FloatTensor) -> FloatTensor:
    """:func:`circular_correlation` with the transforms as matrix products: with ``A = a F`` and ``B = b F`` (F the
    real DFT, d x (d/2 + 1), as cosine and sine parts), ``conj(A) B`` is inverted by the matching real inverse DFT.
    a, b: (N, d) -> (N, d)."""
    d = a.shape[-1]
    k = torch.arange(d // 2 + 1, device=a.device, dtype=a.dtype)
    n = torch.arange(d, device=a.device, dtype=a.dtype)
    angle = 2 * torch.pi * torch.outer(n, k) / d  # (d, d/2 + 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a_re, a_im, b_re, b_im = a @ cos, -(a @ sin), b @ cos, -(b @ sin)  # rfft: x_k = sum_n x_n e^{-2 pi i n k / d}
    re, im = a_re * b_re + a_im * b_im, a_re * b_im - a_im * b_re  # conj(A) * B
    weight = torch.full_like(k, 2.0)  # irfft: the bins other than 0 and d/2 stand for their mirror too
    weight[0] = 1.0
    if d % 2 == 0:
        weight[-1] = 1.0
    return ((re * weight) @ cos.T - (im * weight) @ sin.T) / d


def attribute_triples(kg: KnowledgeGraph) -> LongTensor:
    """Indices of the triples whose tail is never a head (an attribute value): (T_a,)."""
    is_head = torch.zeros(kg.num_entities, dtype=torch.bool)
    is_head[kg.heads] = True
    return torch.nonzero(~is_head[kg.tails]).flatten()


class KGATAX(KGAT):
    def __init__(self, *, kg: KnowledgeGraph, composition: str = "holographic", fusion: str = "mean",
                 **kgat: Any) -> None:
        if composition not in COMPOSITIONS:
            raise ValueError(f"unknown composition {composition!r}; expected one of {COMPOSITIONS}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
        super().__init__(kg=kg, **kgat)
        self.composition, self.fusion = composition, fusion
        aux = attribute_triples(kg)
        offset = self.num_users  # entity -> CKG node
        self.register_buffer("aux_heads", kg.heads[aux] + offset)
        self.register_buffer("aux_relations", kg.relations[aux])
        self.register_buffer("aux_tails", kg.tails[aux] + offset)
        counts = torch.bincount(torch.cat([self.aux_heads, self.aux_tails]), minlength=self.ckg.num_nodes)
        self.register_buffer("aux_inv_count", 1.0 / counts.clamp_min(1).float())
        self.aux_relation = nn.Embedding(kg.num_relations, self.dim)  # e_r of the fusion (entity-sized)
        nn.init.xavier_uniform_(self.aux_relation.weight)
        self.fuse = nn.Linear(self.dim, self.dim, bias=False)  # W_f
        nn.init.xavier_uniform_(self.fuse.weight, gain=FUSE_GAIN)

    def base_vectors(self) -> FloatTensor:
        """``ẽ = e + W_f mean(messages of the node's auxiliary triples)``: (num_nodes, d)."""
        e = self.node.weight
        if self.fusion == "none":
            return e
        h, a = e[self.aux_heads], e[self.aux_tails]
        bound = circular_correlation(h, a) if self.composition == "holographic" else a
        message = self.aux_relation(self.aux_relations) * bound  # (T_a, d)
        n = self.ckg.num_nodes
        total = kgnn.scatter_sum(message, self.aux_heads, n) + kgnn.scatter_sum(message, self.aux_tails, n)
        return e + self.fuse(total * self.aux_inv_count[:, None])
