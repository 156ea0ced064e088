"""Tiny-components builders, one module per pipeline family: each exposes ``CASES``, a dict from a diffusers
pipeline class name to a function returning a ``contract_case.Case`` (the contract test runs every case)."""
