"""``ssld pipeline``: the SSLD recipe as a resumable graph of stages in one run directory."""
