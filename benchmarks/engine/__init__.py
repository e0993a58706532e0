"""The training engine: one training step, the fit loop, metrics, latency and the speed levers."""
