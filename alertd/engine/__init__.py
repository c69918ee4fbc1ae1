"""Pure evaluation of rules: no I/O, no clock (``now`` is always passed in).

Modules: templating (sandboxed Jinja2), windows (active hours), evaluate
(one rule against one event -> Decision), state (firing/resolved flips,
cooldown). Import from the modules; this package re-exports nothing so that
``alertd.rules`` can use ``templating`` without an import cycle.
"""
