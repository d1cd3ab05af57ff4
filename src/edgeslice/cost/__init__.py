"""Cost models (see DESIGN.md, "CostModel"): analytic and profiled, behind one interface."""

from edgeslice.cost.analytic import AnalyticCost
from edgeslice.cost.base import ClusterCost, CostModel, step_fraction
from edgeslice.cost.profiled import ProfiledCost

__all__ = ["AnalyticCost", "ClusterCost", "CostModel", "ProfiledCost", "step_fraction"]
