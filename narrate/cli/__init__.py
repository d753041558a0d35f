"""The ``narrate`` command line, a layer above the flows: :mod:`narrate.cli.main` parses and maps errors
to exit codes; :mod:`~narrate.cli.render` validates and renders scripts; :mod:`~narrate.cli.runs`
retries, lists and serves runs; :mod:`~narrate.cli.endpoint` manages the endpoint, the package and
the IAM policies; :mod:`~narrate.cli.progress` draws a render as it goes."""
