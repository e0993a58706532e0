"""Training loop, metrics, latency probe, harness and leaderboard."""
