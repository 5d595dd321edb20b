"""Sandbox partners: small Starlette apps that play a partner's system over real HTTP.

Each keeps its own members and balances, verifies the hub's signatures, and has
switches for latency, errors, timeouts and "apply, then lose the response".
They exist for the demo and the tests; they are not part of the hub.
"""
