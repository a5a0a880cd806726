"""Layer 3, model: landmarks -> features -> network -> probabilities, and the model folder that holds them.

features.py (the featurisation, a torch module), networks.py (the registry of networks, each an
`encode` / `head` pair), runtime.py (torch and ONNX Runtime runners behind one registry, batching and padding),
artifact.py (the self-checking model folder, `Classifier`) and export.py (ONNX export with parity checks).
It loads without cv2 and MediaPipe, so a server that only classifies landmarks does not pay for them.
"""
