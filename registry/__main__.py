"""`python -m registry` is `ecert` (services spawn their siblings this way, whatever the PATH)."""

from registry.cli import main

main()
