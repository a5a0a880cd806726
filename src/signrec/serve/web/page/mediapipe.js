// MediaPipe Holistic (the vendored @mediapipe/holistic JS solution, loaded by a <script> tag) set up as
// `signrec extract` runs it, for the recognition page and the recording wizard alike.

// Settings of signrec/video/holistic.py: model_complexity 1, smoothing on, no refined face; the models run on the CPU
// (XNNPACK) as in Python unless `gpu` (WebGL) is asked for.
export async function createHolistic({ gpu = false } = {}) {
  const holistic = new window.Holistic({ locateFile: (file) => `vendor/holistic/${file}` });
  holistic.setOptions({ modelComplexity: 1, smoothLandmarks: true, enableSegmentation: false,
    refineFaceLandmarks: false, minDetectionConfidence: 0.5, minTrackingConfidence: 0.5, selfieMode: false,
    useCpuInference: !gpu });
  let latest = null, frames = 0;
  holistic.onResults((results) => { latest = results; });
  await holistic.initialize();
  // One frame in, its results out (the solution answers through a callback). Each frame is stamped 1/30 s after
  // the previous one, as Python's mediapipe.solutions stamps every frame it is given, so that the landmark
  // smoothing behaves as in `signrec extract` and `serve` whatever rate the page manages.
  return async (image) => {
    frames += 1;
    await holistic.send({ image }, (frames * 1000) / 30);
    return latest;
  };
}
