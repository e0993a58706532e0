"""The experiment harness: TOML configs, run records, the sweep over them and the command line."""
