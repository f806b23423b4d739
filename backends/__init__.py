"""Execution backends (imported as ``streamdsl.backends``): each sees only the IR."""
