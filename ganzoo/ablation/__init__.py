"""Ablations: train variants of a recipe (swap the discriminator, or any key) the same way and
compare them with numbers, error bars and images.

::

    plan = load_plan("recipes/ablations/discriminators.yaml", ["data.root=..."])
    run_ablation(plan, Path("runs/ablations/discriminators"))   # resumable
    write_results("runs/ablations/discriminators")                # csv, md, png
    compare_to_base("runs/ablations/discriminators")   # [Comparison]: each variant vs the first

See docs/ablations.md for the spec format and the fairness rules.
"""

from ganzoo.ablation.plan import Plan, Variant, build_plan, load_plan
from ganzoo.ablation.report import Report, RunFailure, compare_to_base, write_results
from ganzoo.ablation.runner import RunOutcome, run_ablation
from ganzoo.ablation.spec import AblationSpec, load_spec, parse_vary, quick_spec
from ganzoo.ablation.statistics import Comparison

__all__ = [
    "AblationSpec",
    "Comparison",
    "Plan",
    "Report",
    "RunFailure",
    "RunOutcome",
    "Variant",
    "build_plan",
    "compare_to_base",
    "load_plan",
    "load_spec",
    "parse_vary",
    "quick_spec",
    "run_ablation",
    "write_results",
]
