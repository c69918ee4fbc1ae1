"""Rule files: models, loading with file:line errors, the live rule set."""
from alertd.rules.loader import LoadResult, find_rule_files, load_rules
from alertd.rules.models import Rule, RuleFile, Template
from alertd.rules.ruleset import RuleSet

__all__ = ["LoadResult", "Rule", "RuleFile", "RuleSet", "Template", "find_rule_files", "load_rules"]
