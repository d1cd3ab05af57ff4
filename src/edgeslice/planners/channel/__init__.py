"""Channel planners: DeCNN's channel-group partitioning (and, on an ordinary model, naive channel splitting).

- ``decnn`` (Du et al., "Model Parallelism Optimization for Distributed
  Inference via Decoupled CNN Structure", TPDS 2021): on a *decoupled* model
  (group convolutions, channel shuffles between stages: :mod:`edgeslice.models.decoupled`)
  device i owns channel group i of every layer of a stage, so a stage is one
  channel segment and devices exchange data only at a shuffle, all-to-all and
  exactly (:func:`edgeslice.program.lower.exact_needs`); FC layers are split
  by input features, partial sums reduced where they are read.  On a model
  that is not decoupled the same rule cuts every channel-mixing layer
  (convolution, Linear) into its own segment split by output channels: the
  "naive channel partitioning" whose all-gather after every layer DeCNN's
  paper argues against — so the benefit of decoupling is measured.

One module per planner: :mod:`.decnn`.
"""
