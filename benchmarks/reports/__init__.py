"""Reports rendered from run records: the leaderboard (with its tuned table) and the reference-study report, and
the statistics they share (intervals and paired tests in ``stats``, their use on records in ``significance``)."""
