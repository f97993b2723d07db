"""The shared core: only what crosses part boundaries.

- :mod:`footfall.core.wire`: aggregate and status messages, edge → server.
- :mod:`footfall.core.manifest`: the model-bundle manifest written by the exporter, read by the edge.
- :mod:`footfall.core.preprocess`: face crop geometry and normalisation, the one implementation used by
  training, export, evaluation and the edge.
- :mod:`footfall.core.yamlerrors`: a YAML syntax error as one line, at the line where it starts (agent
  configs, training recipes).
- :mod:`footfall.core.detector` / :mod:`footfall.core.bundle`: loading a verified bundle and running it
  with onnxruntime (imported lazily: the server never needs them).
"""
