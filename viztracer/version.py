"""The package version (kept in step with Cargo.toml, which maturin reads)."""

__version__ = "1.1.1"
