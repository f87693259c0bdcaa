"""Training: one fit loop, truncated BPTT streams, schedules, checkpoints and metrics."""
