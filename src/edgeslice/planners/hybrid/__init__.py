"""Hybrid partitioning: OfpCNN's HVPM (Yang et al., TPDS 2023), horizontal and vertical cuts mixed per segment.

- ``hvpm``: for each segment of consecutive layers, *vertical* (the whole
  segment on one device) or *horizontal* (row strips of its fused layers over
  a subset of the devices, sized by load-adjusted speed; the non-spatial tail
  split by output features), with the device that distributes each segment's
  input and the one that gathers its output chosen jointly over the whole
  model by a DP over (boundary, layout) states (note *hvpm-space*); the other
  planners' plans are simulated beside the DP's and the fastest kept (note
  *hvpm*), so it is never slower than they are on its own cost model.

Modules: :mod:`.dp` (the numeric core, on arrays), :mod:`.space` (the
space: layouts, choices, the edge table), :mod:`.hvpm` (the planner).
"""
