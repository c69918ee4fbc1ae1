"""Pure evaluation of rules: no I/O, no clock (``now`` is always passed in).

Modules: templating (sandboxed Jinja2), windows (active hours), recipients
(``to`` entries to numbers, from the names it is given), evaluate (one rule
against one event -> Decision), state (firing/resolved flips, cooldown),
grouping (group keys, the grouped message), preview (a dry run's report).
What a decision does (state stored, rows sent) is alertd/dispatch/rules.py.
Nothing here imports the store, the sources, dispatch, providers or the API
(tests/test_architecture.py). Import from the modules; this package
re-exports nothing so that ``alertd.rules`` can use ``templating`` without an
import cycle.
"""
