"""Stage 1 of the data flow: model → LayerGraph (see DESIGN.md, "The data flow")."""

from edgeslice.graph.layer import (
    INPUT,
    KINDS,
    SPATIAL_KINDS,
    Geometry,
    Layer,
    LayerGraph,
)
from edgeslice.graph.trace import trace, trace_module

__all__ = ["INPUT", "KINDS", "SPATIAL_KINDS", "Geometry", "Layer", "LayerGraph", "trace", "trace_module"]
