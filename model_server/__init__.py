"""What ships inside the SageMaker container: the handler and its engines. Imports nothing from narrate."""

# Part of every cache key: bump when a change to the handler changes the sound it produces.
HANDLER_VERSION = "1"
