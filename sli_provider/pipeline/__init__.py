"""The SLI pipeline: an evaluation window in, indicator values out.

Used alike by the service's get-sli and /preview and by the CLI's preview and gate.
"""
