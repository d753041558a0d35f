"""Voices people add from their own recordings (``narrate voice add``): decoding any common format,
finding the speech, choosing and cutting the clip, checking it, its transcript, its report, and the
voice entry written into a voices file."""
