"""forensics: eyewitness face sketch → synthesized photo → ranked mugshot candidates → report."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("forensics")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
