"""Kernel: domain types, the one error tree, config value types and plugin registry helpers.

Imports nothing of the project; every other layer may import it.
"""
