"""Runtimes: the transport interface and the in-process simulation."""
