"""ecert's shared core: certificate format, chain client, contracts, deployment, indexer.

Importing `eth_account` lets py_ecc raise Python's recursion limit to 100,000, which turns a
deeply nested JSON document (an attacker's request body) into a C stack overflow instead of a
RecursionError. We import it first and put a sane limit back for every ecert process.
"""

import sys

import eth_account  # noqa: F401 - imported for its side effect, undone below

sys.setrecursionlimit(min(sys.getrecursionlimit(), 5_000))
