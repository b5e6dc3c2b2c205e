"""Method implementations. Importing this package registers every implementation."""

from .base import IMPLEMENTATIONS, ClassSpace, Method, Stage, Update
from . import spnet  # noqa: F401

__all__ = ["IMPLEMENTATIONS", "ClassSpace", "Method", "Stage", "Update"]
