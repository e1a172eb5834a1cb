"""The package version. It is written once, in Cargo.toml; maturin puts it in the
wheel's metadata, and the native module carries it (docs/releasing.md, "Version")."""

from ._snaptrace import VERSION as __version__

__all__ = ["__version__"]
