"""Speech engines behind one narrow interface; the handler picks them by request mode."""
