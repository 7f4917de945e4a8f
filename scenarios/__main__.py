"""`python3 -m shunt.scenarios scenario ...` and `... dashboard ...` (what `shunt scenario` and
`shunt dashboard` run): see cli.py."""
import sys

from .cli import main

sys.exit(main())
