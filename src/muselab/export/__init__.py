"""Export trained models to ONNX for :mod:`muselab.runtime` (``muselab export``).

:mod:`muselab.export.onnx` traces and checks one graph, :mod:`muselab.export.targets`
says what each kind of model exports, :mod:`muselab.export.api` loads a run or zoo
model and writes the folder (graphs + ``model.json``). See docs/deploy.md.
"""
