"""The shared math of the model zoo, as plain functions reused by every model.

KG scores (higher = more plausible): TransE, DistMult, ComplEx, and the TransR projection and distance;
losses: BPR, margin ranking, binary cross-entropy on positive/negative logits, an L2 term;
segment operations over an edge index: :func:`scatter_sum` and :func:`scatter_softmax`
(as PyG's ``utils/_softmax.py``), :func:`masked_softmax` for fixed-size segments, and :func:`edge_matmul`, a
propagation step over a weighted edge index with a per-edge weight gradient.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from models.graph import csr_pointer
from models.typing import BoolTensor, FloatTensor, LongTensor


def transe_score(h: FloatTensor, r: FloatTensor, t: FloatTensor, p: int = 2) -> FloatTensor:
    """``-||h + r - t||_p`` (Bordes et al., NeurIPS 2013). h, r, t: shape (..., d) -> (...)."""
    return -torch.linalg.vector_norm(h + r - t, ord=p, dim=-1)


def distmult_score(h: FloatTensor, r: FloatTensor, t: FloatTensor) -> FloatTensor:
    """``<h, r, t> = sum_i h_i r_i t_i`` (Yang et al., ICLR 2015). h, r, t: shape (..., d) -> (...)."""
    return (h * r * t).sum(-1)


def complex_score(h: FloatTensor, r: FloatTensor, t: FloatTensor) -> FloatTensor:
    """``Re(<h, r, conj(t)>)`` (Trouillon et al., ICML 2016).

    h, r, t: shape (..., 2d), the real parts in ``[..., :d]`` and the imaginary parts in ``[..., d:]``.
    """
    h_re, h_im = h.chunk(2, dim=-1)
    r_re, r_im = r.chunk(2, dim=-1)
    t_re, t_im = t.chunk(2, dim=-1)
    return (h_re * r_re * t_re + h_im * r_re * t_im + h_re * r_im * t_im - h_im * r_im * t_re).sum(-1)


def transr_project(e: FloatTensor, m: FloatTensor) -> FloatTensor:
    """``e M_r``: entity vectors into relation space (Lin et al., AAAI 2015).

    e: shape (..., d_e); m: shape (..., d_e, d_r), broadcastable against e -> shape (..., d_r).
    """
    return torch.matmul(e.unsqueeze(-2), m).squeeze(-2)


def transr_distance(h: FloatTensor, r: FloatTensor, t: FloatTensor, m: FloatTensor) -> FloatTensor:
    """``||norm(h M_r) + norm(r) - norm(t M_r)||^2``, the squared TransR distance with L2-normalised vectors as
    CKE's and KGAT's code compute it (lower = more plausible). h, t: (B, d_e); r: (B, d_r); m: (B, d_e, d_r)."""
    h_r = F.normalize(transr_project(h, m), dim=-1)
    t_r = F.normalize(transr_project(t, m), dim=-1)
    return (h_r + F.normalize(r, dim=-1) - t_r).pow(2).sum(-1)


def transr_pair_distance(h: FloatTensor, r: FloatTensor, t: FloatTensor, t_neg: FloatTensor, m: FloatTensor
                         ) -> tuple[FloatTensor, FloatTensor]:
    """:func:`transr_distance` of ``(h, r, t)`` and of ``(h, r, t_neg)``, the three projections in one batched
    product (half the time of three). h, t, t_neg: (B, d_e); r: (B, d_r); m: (B, d_e, d_r) -> (B,), (B,)."""
    projected = F.normalize(torch.stack([h, t, t_neg], dim=1) @ m, dim=-1)  # (B, 3, d_r)
    translated = projected[:, 0] + F.normalize(r, dim=-1)
    return (translated - projected[:, 1]).pow(2).sum(-1), (translated - projected[:, 2]).pow(2).sum(-1)


def bpr_loss(pos: FloatTensor, neg: FloatTensor) -> FloatTensor:
    """``-mean(log sigmoid(pos - neg))`` (Rendle et al., UAI 2009). pos: shape (B,); neg: (B,) or (B, N) (the
    mean over every (positive, negative) pair)."""
    return -F.logsigmoid(pos.unsqueeze(-1) - neg.reshape(len(pos), -1)).mean()


def softmax_loss(pos: FloatTensor, neg: FloatTensor, temperature: float = 1.0) -> FloatTensor:
    """Sampled softmax: ``-mean log(e^(pos/t) / (e^(pos/t) + sum_j e^(neg_j/t)))``, the positive against its N
    sampled negatives at once (Wu et al., "On the Effectiveness of Sampled Softmax Loss for Item
    Recommendation", TOIS 2024). pos: shape (B,); neg: (B,) or (B, N)."""
    logits = torch.cat([pos.unsqueeze(-1), neg.reshape(len(pos), -1)], dim=1) / temperature
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


RANKING_LOSSES = ("bpr", "softmax")


def check_ranking_loss(kind: str, temperature: float) -> None:
    """ValueError unless ``kind`` is one of :data:`RANKING_LOSSES` and ``temperature`` > 0."""
    if kind not in RANKING_LOSSES:
        raise ValueError(f"unknown ranking loss cf_loss={kind!r}: expected one of {', '.join(RANKING_LOSSES)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def negative_scores(users: FloatTensor, negatives: FloatTensor) -> FloatTensor:
    """Inner products of each user vector with its negatives' vectors. users: (B, d); negatives: (B, d) or
    (B, N, d) -> (B, N)."""
    return (users.unsqueeze(1) * negatives.reshape(len(users), -1, users.shape[-1])).sum(-1)


def ranking_loss(kind: str, pos: FloatTensor, neg: FloatTensor, temperature: float = 1.0) -> FloatTensor:
    """:func:`bpr_loss` (``kind="bpr"``) or :func:`softmax_loss` (``"softmax"``) of scores pos (B,), neg (B,)/(B, N)."""
    check_ranking_loss(kind, temperature)
    return bpr_loss(pos, neg) if kind == "bpr" else softmax_loss(pos, neg, temperature)


def margin_loss(pos: FloatTensor, neg: FloatTensor, margin: float) -> FloatTensor:
    """``mean(max(0, margin - pos + neg))`` for scores where higher is better. pos, neg: shape (B,)."""
    return F.relu(margin - pos + neg).mean()


def bce_loss(pos: FloatTensor, neg: FloatTensor) -> FloatTensor:
    """Binary cross-entropy of logits, label 1 for ``pos`` and 0 for ``neg`` (the CTR loss). shape (B,)."""
    logits = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    return F.binary_cross_entropy_with_logits(logits, labels)


def bce_of_probabilities(pos: FloatTensor, neg: FloatTensor, eps: float = 1e-6) -> FloatTensor:
    """Binary cross-entropy of probabilities (not logits), label 1 for ``pos`` and 0 for ``neg``, each clamped to
    ``[eps, 1 - eps]``; computed in fp32 by hand, as ``F.binary_cross_entropy`` refuses to run under autocast.
    pos, neg: shape (B,)."""
    pos, neg = pos.float().clamp(eps, 1 - eps), neg.float().clamp(eps, 1 - eps)
    return -(torch.log(pos).sum() + torch.log1p(-neg).sum()) / max(len(pos) + len(neg), 1)


def l2_penalty(*tensors: FloatTensor) -> FloatTensor:
    """``sum_t ||t||^2 / 2``, divided by the batch size (the first dimension of the first tensor)."""
    batch = max(tensors[0].shape[0], 1)
    return sum(t.float().pow(2).sum() for t in tensors) / (2 * batch)


def scatter_sum(src: FloatTensor, index: LongTensor, num_segments: int) -> FloatTensor:
    """Sum the rows of ``src`` into segments. src: shape (E, ...); index: shape (E,) -> (num_segments, ...)."""
    out = src.new_zeros((num_segments, *src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_softmax(src: FloatTensor, index: LongTensor, num_segments: int) -> FloatTensor:
    """Softmax of ``src`` within each segment of ``index``. src, index: shape (E,) -> (E,).

    Entries of ``-inf`` get weight 0; a segment whose entries are all ``-inf`` gets all zeros.
    """
    seg_max = src.new_full((num_segments,), float("-inf")).scatter_reduce(0, index, src, "amax")
    seg_max = torch.where(torch.isfinite(seg_max), seg_max, torch.zeros_like(seg_max))
    exp = (src - seg_max[index]).exp()
    denom = scatter_sum(exp, index, num_segments)
    return exp / denom[index].clamp_min(torch.finfo(exp.dtype).tiny)


def masked_softmax(scores: FloatTensor, mask: BoolTensor, dim: int = -1) -> FloatTensor:
    """Segment softmax for fixed-size segments laid out along ``dim`` (a sampled neighbourhood of K).

    The same result as :func:`scatter_softmax` over the edge index ``arange(n).repeat_interleave(K)``;
    masked entries get weight 0, and an all-masked segment gets all zeros.
    scores, mask: shape (..., K, ...).
    """
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)
    return torch.nan_to_num(weights, nan=0.0)


# torch's CSR support is stable for the products used here (CSR @ dense, sampled_addmm on CPU and CUDA).
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class EdgeIndex:
    """A fixed weighted-graph pattern ``dst <- src`` (E edges over N nodes) for :func:`edge_matmul`: the CSR layouts
    of the pattern and of its transpose over the distinct (dst, src) pairs (parallel edges, e.g. two relations
    between the same entities, share a slot and their weights add up), and the slot of each edge."""

    def __init__(self, src: LongTensor, dst: LongTensor, num_nodes: int) -> None:
        self.num_nodes = num_nodes
        keys, self.slot = torch.unique(dst * num_nodes + src, return_inverse=True)  # sorted by (dst, src)
        rows, cols = torch.div(keys, num_nodes, rounding_mode="floor"), keys % num_nodes
        self.crow, self.cols = csr_pointer(rows, num_nodes), cols
        self.order_t = torch.argsort(cols * num_nodes + rows)  # slot order of the transpose (rows = src)
        self.crow_t, self.cols_t = csr_pointer(cols[self.order_t], num_nodes), rows[self.order_t]
        self._cache: dict[tuple[int, int, bool], tuple[FloatTensor, torch.Tensor]] = {}

    def values(self, weight: FloatTensor) -> FloatTensor:
        """The weight of each slot: the sum of its edges'. weight: (E,) -> (slots,)."""
        return weight.new_zeros(len(self.cols)).index_add_(0, self.slot, weight.detach())

    def matrix(self, weight: FloatTensor, transpose: bool = False) -> torch.Tensor:
        """The (N, N) CSR matrix with ``weight`` on the edges: rows = dst (or src when ``transpose``). The last
        matrices built are reused while ``weight`` is the same tensor, unchanged and not learned (KGAT's attention,
        fixed for an epoch, is propagated three times forward and three times backward per batch)."""
        if weight.is_cuda and torch.cuda.is_current_stream_capturing():  # a CUDA graph rebuilds the values from the
            return self._build(weight, transpose)  # weight at each replay, so a new epoch's attention is read
        key = (id(weight), weight._version, transpose)
        cached = self._cache.get(key)
        if cached is not None and cached[0] is weight:
            return cached[1]
        if weight.requires_grad or weight.is_inference():  # learned weights (PathRec) change every step; tensors
            return self._build(weight, transpose)  # made under inference_mode keep no version to key a reuse on
        if len(self._cache) >= 4:
            self._cache.clear()
        self._cache[key] = (weight, self._build(weight, transpose))
        return self._cache[key][1]

    def _build(self, weight: FloatTensor, transpose: bool) -> torch.Tensor:
        values = self.values(weight)
        crow, cols, values = (self.crow_t, self.cols_t, values[self.order_t]) if transpose else (
            self.crow, self.cols, values)
        return torch.sparse_csr_tensor(crow, cols, values, (self.num_nodes, self.num_nodes), check_invariants=False)


class _EdgeMatmul(torch.autograd.Function):
    """``out[dst[e]] += weight[e] * x[src[e]]`` as a CSR product; the weight gradient by a sampled product
    (``torch.sparse.sampled_addmm``) on the edges only, never a dense N x N gradient.

    Never below fp32: cuSPARSE has no CSR product of an fp32 matrix with a bf16 operand, and ``sampled_addmm`` wants
    one dtype, so under autocast bf16/fp16 inputs are cast to fp32 (fp64 stays fp64) and the products run with
    autocast off; the output has that dtype (the incoming gradient too, as autograd matches it to the output), and the
    gradients autograd hands back are cast to each input's own dtype.
    """

    @staticmethod
    def forward(ctx, weight: FloatTensor, edges: EdgeIndex, x: FloatTensor) -> FloatTensor:  # noqa: ANN001
        dtype = torch.promote_types(torch.promote_types(weight.dtype, x.dtype), torch.float32)
        weight, x = weight.to(dtype), x.to(dtype)
        ctx.save_for_backward(weight, x)
        ctx.edges = edges
        with torch.autocast(x.device.type, enabled=False):
            return edges.matrix(weight) @ x

    @staticmethod
    def backward(ctx, grad: FloatTensor):  # noqa: ANN001, ANN205
        weight, x = ctx.saved_tensors
        edges: EdgeIndex = ctx.edges
        grad = grad.to(x.dtype)
        grad_weight = grad_x = None
        with torch.autocast(grad.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                sampled = torch.sparse.sampled_addmm(edges.matrix(torch.zeros_like(weight)), grad.contiguous(), x.T,
                                                     beta=0.0)
                grad_weight = sampled.values()[edges.slot]  # an edge's gradient is its slot's
            if ctx.needs_input_grad[2]:
                grad_x = edges.matrix(weight, transpose=True) @ grad
        return grad_weight, None, grad_x


def edge_matmul(weight: FloatTensor, edges: EdgeIndex, x: FloatTensor) -> FloatTensor:
    """One propagation step over a weighted edge index: ``out[v] = sum_{e: dst[e] = v} weight[e] * x[src[e]]``.

    The same as ``scatter_sum(weight[:, None] * x[edges.src], edges.dst, N)`` without materialising the (E, B)
    messages, and with the weight gradient computed on the edges alone (``torch.sparse.mm``'s own backward builds a
    dense N x N gradient). weight: (E,); x: (N, B) -> (N, B).
    """
    return _EdgeMatmul.apply(weight, edges, x)
