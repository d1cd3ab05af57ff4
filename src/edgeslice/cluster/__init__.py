"""Clusters of devices and links (see DESIGN.md, "Cluster")."""

from edgeslice.cluster.model import Cluster, Device, Link, Profile

__all__ = ["Cluster", "Device", "Link", "Profile"]
