"""genaug: generative data augmentation, from raw images to served models.

The package is importable without torch: ``genaug.catalog``, ``genaug.profiles`` and
``genaug.params`` use the standard library only, so bad parameters are rejected in
well under a second, before any heavy import, server or data load.
"""

__version__ = "0.1.0"
