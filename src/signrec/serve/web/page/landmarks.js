// MediaPipe Holistic results (the @mediapipe/holistic JS solution) -> one frame in signrec's landmark layout
// `holistic-543-xyz`, as signrec/landmarks.py defines it: pose 0-32, face 33-500, left hand 501-521,
// right hand 522-542, normalised image x, y, z; a part that was not detected is NaN, never 0.
// The JS solution names hands as Python's does (the person's left hand is `leftHandLandmarks`).

export const LAYOUT = "holistic-543-xyz";
export const PARTS = {
  pose: [0, 33, "poseLandmarks"],
  face: [33, 501, "faceLandmarks"],
  left_hand: [501, 522, "leftHandLandmarks"],
  right_hand: [522, 543, "rightHandLandmarks"],
};

// face: false leaves the face NaN, as `signrec extract --no-face` does for models trained without it.
export function toFrame(results, { face = true } = {}) {
  const frame = new Float32Array(543 * 3).fill(NaN);
  for (const [name, [start, stop, key]] of Object.entries(PARTS)) {
    const points = results[key];
    if (!points || (name === "face" && !face)) continue;
    for (let i = 0; i < stop - start; i++) {   // a refined face mesh has 478 points: the first 468 are the same
      const p = points[i];
      frame.set([p.x, p.y, p.z], (start + i) * 3);
    }
  }
  return frame;
}

// {part: [[x, y] | null] | null}: the shape the server's stream sends for drawing.
export function forDrawing(frame) {
  const out = {};
  for (const [name, [start, stop]] of Object.entries(PARTS)) {
    const points = [];
    let any = false;
    for (let i = start; i < stop; i++) {
      const x = frame[i * 3], y = frame[i * 3 + 1];
      const ok = !Number.isNaN(x) && !Number.isNaN(y);
      points.push(ok ? [x, y] : null);
      any = any || ok;
    }
    out[name] = any ? points : null;
  }
  return out;
}
