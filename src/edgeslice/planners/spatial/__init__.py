"""Spatial planners users know: DeepThings' FTP, MoDNN's speed-sized strips, AOFL's fusion DP.

- ``ftp`` (Zhao et al., DeepThings, TCAD 2018): an N×M grid of tiles over the
  first L fused layers, tiles spread round-robin over the devices, the rest of
  the model on the gateway (the source).  Without ``layers``, every prefix that
  can be tiled is tried and the fastest (simulated) kept.
- ``modnn`` (Mao et al., MoDNN, DATE 2017): every conv/pool layer (with the
  element-wise layers after it) is its own segment, cut into 1-D row strips
  sized by device speed; fully-connected layers are split by output neurons,
  also by speed.  No fusion: every layer exchanges its halo rows.
- ``aofl`` (Zhou et al., "Adaptive parallel execution of DNNs on heterogeneous
  edge devices", SEC 2019): dynamic programming over fusion points — which runs
  of layers to fuse into one strip-partitioned block — with strips sized by
  device speed, scoring each block by its slowest device's halo receive plus
  compute time; the non-spatial tail runs whole on the fastest device.

One module per planner: :mod:`.ftp`, :mod:`.modnn`, :mod:`.aofl`.
"""
