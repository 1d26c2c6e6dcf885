"""Benchmarks of kgrec's recommenders against peer implementations on the identical data split."""
