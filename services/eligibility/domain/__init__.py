"""Pure eligibility rules (standard library only): rule sets, classification, standing, programmes."""

from services.eligibility.domain.classify import CATEGORIES, Decision, Explanation, classify
from services.eligibility.domain.programmes import Catalogue, Programme, ProgramStatus, evaluate
from services.eligibility.domain.rulebook import RuleBook, build
from services.eligibility.domain.rulesets import AREA_TYPES, NoRuleSet, RuleSet, RuleSetError
from services.eligibility.domain.standing import Standing, Transition, add_months, recognize

__all__ = [
    "AREA_TYPES", "CATEGORIES", "Catalogue", "Decision", "Explanation", "NoRuleSet",
    "ProgramStatus", "Programme", "RuleBook", "RuleSet", "RuleSetError", "Standing", "Transition",
    "add_months", "build", "classify", "evaluate", "recognize",
]
