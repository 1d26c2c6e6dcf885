"""models: PyTorch knowledge-graph recommenders (model interface, shared math, trainer, evaluator).

``MODELS`` maps a model name to its class, explicitly (no lookups by string building). This package
never imports ``kg_build`` or ``pipeline`` (DESIGN.md §2); polars is used only in :mod:`models.data`.
"""

from models.bprmf import BPRMF
from models.cke import CKE
from models.complex import ComplEx
from models.distmult import DistMult
from models.kgat import KGAT
from models.kgatax import KGATAX
from models.kgcn import KGCN
from models.kgif import KGIF
from models.kgnnls import KGNNLS
from models.pathrec import PathRec
from models.pop import Popularity
from models.ripplenet import RippleNet
from models.transe import TransE
from models.transr import TransR

MODELS: dict[str, type] = {
    "pop": Popularity,
    "bprmf": BPRMF,
    "transe": TransE,
    "transr": TransR,
    "distmult": DistMult,
    "complex": ComplEx,
    "kgcn": KGCN,
    "kgnnls": KGNNLS,
    "ripplenet": RippleNet,
    "cke": CKE,
    "kgat": KGAT,
    "pathrec": PathRec,
    "kgatax": KGATAX,
    "kgif": KGIF,
}
