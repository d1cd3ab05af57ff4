"""What every planner family shares: plan building and evaluation, cost tables, the unit-chain DP."""
