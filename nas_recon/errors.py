"""Errors the CLI turns into a one-line message and exit status 2."""


class NasReconError(Exception):
    """A user-facing error: bad input, bad configuration, unsupported data."""


class DataError(NasReconError):
    """A data file or folder is missing, malformed or unsupported."""


class ConfigError(NasReconError):
    """A configuration value (option, TOML key, JSON field) is invalid."""


class Diverged(NasReconError):
    """Training diverged (a non-finite or exploding loss); the run keeps its last good checkpoint."""
