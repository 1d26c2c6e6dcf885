"""models: PyTorch knowledge-graph recommenders (model interface, shared math, trainer, evaluator).

``MODELS`` maps a model name to its class. The models arrive with the "Models I" and "Models II"
issues; this package never imports ``kg_build`` or ``pipeline`` (DESIGN.md §2).
"""

MODELS: dict[str, type] = {}
