"""Layer 2, video: frames in, landmarks out.

settings.py (how videos become landmarks; no cv2 or MediaPipe, so a model can record it), sources.py (video
files, cameras, streams behind one protocol), holistic.py (MediaPipe Holistic on one video), batch.py (many
videos on an executor, resumable, with a manifest; opening a dataset of videos as a landmark store) and
show.py (skeleton drawings). Importing this package imports neither cv2 nor MediaPipe.
"""
