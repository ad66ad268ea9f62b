"""Training and evaluating colour models (``carcolor train`` / ``carcolor evaluate``).

Needs the ``[train]`` extra (TensorFlow, tf2onnx, scikit-learn, matplotlib);
nothing here is imported by inference.

- ``dataset``: labelled photo folders and their splits; ``augment``: views and rare-colour synthesis;
- ``effnet`` + ``torchweights``: the ImageNet EfficientNet-Lite0 teacher (weights read without PyTorch);
- ``train``: teacher, distilled student, export, calibration; ``model_card``: its MODEL_CARD.md;
- ``export``: Keras -> ONNX / frozen graph; ``baselines``: histogram+LR and the HSV rule;
- ``metrics`` + ``evaluate``: the numbers, on a split or on labelled boxes of a video.
"""
