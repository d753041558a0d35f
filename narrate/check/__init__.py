"""Is what a render says its script? Recognition and word alignment (``narrate check``)."""
