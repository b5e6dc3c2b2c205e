"""Method implementations. Importing this package registers every implementation."""

from .base import IMPLEMENTATIONS, ClassSpace, Method, Stage, Update
from . import cagnet, cagnet_patch, spnet, zs3net  # noqa: F401
from . import self_training  # noqa: F401  resolves "<impl>+st" for every implementation, lazily

__all__ = ["IMPLEMENTATIONS", "ClassSpace", "Method", "Stage", "Update"]
