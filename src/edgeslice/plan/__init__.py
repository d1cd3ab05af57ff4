"""The Plan (see DESIGN.md): what runs where; the only contract between planning and execution."""

from edgeslice.plan.plan import CUTS, PLAN_VERSION, ModelRef, Part, Plan, Segment
from edgeslice.plan.validate import check_cluster, check_model, plan_cluster, validate

__all__ = ["CUTS", "PLAN_VERSION", "ModelRef", "Part", "Plan", "Segment", "check_cluster", "check_model", "plan_cluster",
           "validate"]
