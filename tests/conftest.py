"""Suite-wide settings."""

from hypothesis import settings

# The suite runs on 2 shared cores next to Bytewax and Beam workers: no per-example deadline
# (timing is never what a test asserts).
settings.register_profile("streamdsl", deadline=None, max_examples=100)
settings.load_profile("streamdsl")
