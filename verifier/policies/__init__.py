"""Example recognition policies, one JSON file per verifier node (`verifier.policy` documents the
schema). A package so that the files ship in the wheel with the code that reads them."""
