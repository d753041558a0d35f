"""narrate: narrate product demos in any voice, locked sample-exactly to the video's scenes."""

__version__ = "0.1.0"
