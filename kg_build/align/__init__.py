"""Alignment of catalog items to knowledge-graph entities."""
