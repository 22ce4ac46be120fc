"""Training: the epoch loop, the one training step (eager or CUDA graph), trunk lookahead, epoch
batches, seeding, the trunk's starting weights, TensorBoard logging and checkpoint averaging (SWA)."""
