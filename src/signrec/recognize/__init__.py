"""Layer 6, recognize: a trained model on new input.

predict.py (files -> signs), continuous.py (a stream of landmark frames -> words with times) and live.py
(a camera or stream -> Holistic -> words).
"""
