"""Experiments and the `seccl` command line."""
