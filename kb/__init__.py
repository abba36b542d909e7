"""kb: the living complaint cheat sheet."""

from kb.app import create_app

__all__ = ["create_app"]
