"""Everything that runs models on data: ``engine`` (training and measuring), ``harness`` (configs, records,
sweep, CLI), ``reports`` (leaderboard, study) and ``speed`` (the comparison with peer implementations)."""
