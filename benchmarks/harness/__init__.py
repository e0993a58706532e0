"""The experiment harness: TOML configs, run records and the predictions beside them, the sweep over them,
equal-budget tuning and the command line."""
