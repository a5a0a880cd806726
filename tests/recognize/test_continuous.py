"""Continuous signing on a real multi-sign video of a signer the model never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from signrec import SignrecError
from signrec.landmarks import empty
from signrec.model.artifact import Classifier
from signrec.recognize.continuous import StreamRecognizer, StreamSettings, segments, transcribe, word_accuracy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_segments_find_each_sign_of_the_sentence(mlr511_sentence, mlr511_sentence_landmarks):
    _video, reference, bounds = mlr511_sentence
    cuts = segments(mlr511_sentence_landmarks, 15.0)
    assert len(cuts) == len(reference)
    for (start, end, first, stop), (clip_first, clip_end) in zip(cuts, bounds, strict=True):
        assert clip_first / 15 <= start < end <= clip_end / 15  # the raised-hands part lies inside its clip
        assert first <= round(start * 15) and stop > round(end * 15)  # classified with context around it


def test_transcribe_reads_the_sentence(mlr511_tiny_model, mlr511_sentence, mlr511_sentence_landmarks):
    _video, reference, bounds = mlr511_sentence
    classifier = Classifier.load(mlr511_tiny_model)
    words = transcribe(classifier, mlr511_sentence_landmarks, 15.0)
    hypothesis = [w["label"] for w in words]
    # Segmentation loses nothing: one word per clip, inside the clip, and the label the classifier gives the
    # whole clip when it is cut at the true boundaries. What is left is the tiny model's own error rate.
    clips = classifier.predict_proba([mlr511_sentence_landmarks[a:b] for a, b in bounds]).argmax(axis=1)
    isolated = [classifier.labels[i] for i in clips]
    print(json.dumps({"reference": reference, "words": words, "isolated": isolated,
                      "word_accuracy": word_accuracy(reference, hypothesis)}))
    assert hypothesis == isolated
    assert word_accuracy(reference, hypothesis) >= 0.4  # chance: 1/3
    for w, (first, end) in zip(words, bounds, strict=True):
        assert first / 15 <= w["start"] < w["end"] <= end / 15
        assert 0.0 <= w["confidence"] <= 1.0


def test_stream_gives_the_same_words_as_transcribe(mlr511_tiny_model, mlr511_sentence_landmarks):
    classifier = Classifier.load(mlr511_tiny_model)
    stream = StreamRecognizer(classifier, 15.0)
    states = [stream.push(frame, i / 15) for i, frame in enumerate(mlr511_sentence_landmarks)]
    final = stream.finish()
    assert final["words"] == transcribe(classifier, mlr511_sentence_landmarks, 15.0)
    signing = [s["signing"] for s in states]
    assert signing[0] is False and sum(a != b for a, b in zip(signing, signing[1:], strict=False)) >= 8
    live = [s["top"] for s in states if s["signing"] and s["top"]]
    assert live, "the top-3 is updated while signing"
    for top in live:
        assert len(top) == 3 and {label for label, _p in top} <= set(classifier.labels)
        probs = [p for _label, p in top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-3
    # words appear only once the sign has ended, and are never taken back
    counts = [len(s["words"]) for s in states]
    assert counts == sorted(counts)


def test_no_words_without_a_person_or_at_rest(mlr511_tiny_model, mlr511_sentence_landmarks):
    classifier = Classifier.load(mlr511_tiny_model)
    assert transcribe(classifier, empty(40), 15.0) == []
    rest = np.repeat(mlr511_sentence_landmarks[:1], 60, axis=0)  # first frame: hands down, held 4 s
    assert transcribe(classifier, rest, 15.0) == []


def test_threshold_drops_unsure_words(mlr511_tiny_model, mlr511_sentence_landmarks):
    classifier = Classifier.load(mlr511_tiny_model)
    assert transcribe(classifier, mlr511_sentence_landmarks, 15.0, threshold=1.01) == []


def test_settings_are_checked(mlr511_tiny_model):
    classifier = Classifier.load(mlr511_tiny_model)
    with pytest.raises(SignrecError, match="unknown stream setting"):
        StreamRecognizer(classifier, 15.0, windw=2)
    with pytest.raises(SignrecError, match="smoothing"):
        StreamSettings(smoothing=0)
    with pytest.raises(SignrecError, match=r"\(543, 3\)"):
        StreamRecognizer(classifier, 15.0).push(np.zeros((10, 3), np.float32), 0.0)
    with pytest.raises(SignrecError, match="frame rate"):
        transcribe(classifier, empty(5), 0)


def test_word_accuracy_is_one_minus_edit_distance_over_reference():
    assert word_accuracy(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert word_accuracy(["a", "b", "c"], ["a", "c"]) == pytest.approx(2 / 3)  # one deletion
    assert word_accuracy(["a", "b"], ["a", "x", "b", "y"]) == 0.0  # two insertions
    assert word_accuracy(["a"], []) == 0.0
