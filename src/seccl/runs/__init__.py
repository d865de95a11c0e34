"""A run directory and what reads it: config, launch, records, checkpoints, audit, verification."""
