"""The research bench: experiment grids, the comparison, chain-free baselines, the attack table."""
