"""kg_build: catalog loaders, SPARQL extraction, alignment, KG assembly and validation."""
