"""Reports rendered from run records: the leaderboard and the reference-study report."""
