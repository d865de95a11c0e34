"""Chain layer: the bulletin board and consensus contracts, their typed clients and backends."""
