// MediaPipe Holistic (the vendored @mediapipe/holistic JS solution, loaded by a <script> tag) set up as
// `signrec extract` runs it, for the recognition page and the recording wizard alike.

// Settings of signrec/extract.py: model_complexity 1, smoothing on, no refined face; the models run on the CPU
// (XNNPACK) as in Python unless `gpu` (WebGL) is asked for.
export async function createHolistic({ gpu = false } = {}) {
  const holistic = new window.Holistic({ locateFile: (file) => `vendor/holistic/${file}` });
  holistic.setOptions({ modelComplexity: 1, smoothLandmarks: true, enableSegmentation: false,
    refineFaceLandmarks: false, minDetectionConfidence: 0.5, minTrackingConfidence: 0.5, selfieMode: false,
    useCpuInference: !gpu });
  let latest = null;
  holistic.onResults((results) => { latest = results; });
  await holistic.initialize();
  // One frame in, its results out (the solution answers through a callback).
  return async (image) => {
    await holistic.send({ image });
    return latest;
  };
}
