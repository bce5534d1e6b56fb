"""ecert's shared core: certificate format, chain client, contracts, deployment, indexer.

Importing `py_ecc` (through `eth_account` or `web3`) or py-evm's `eth` raises Python's recursion
limit to 100,000 or more, which turns a deeply nested JSON document (an attacker's request body)
into a C stack overflow instead of a RecursionError. Those imports are heavy, and a command such
as `ecert --help` must not pay for them, so instead of importing them here we put a sane limit
back now and after each of them is imported, whenever that happens (`recursion_guard`).
"""

from registry.recursion_guard import install as _install_recursion_guard

_install_recursion_guard()
