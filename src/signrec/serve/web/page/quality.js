// Quality checks of a take, each with a plain-words hint. Landmark checks read frames in signrec's layout
// (landmarks.js); picture checks read the small grey copies `pictureStats` makes while recording.

const NOSE = 0, LEFT_WRIST = 15, RIGHT_WRIST = 16, LEFT_HAND = 501, RIGHT_HAND = 522, FACE = 33;
const found = (frame, point) => !Number.isNaN(frame[point * 3]);
const share = (frames, test) => (frames.length ? frames.filter(test).length / frames.length : 0);

// Mean brightness (0-255) and sharpness (mean |Laplacian|) of a grey picture {data, width, height}.
export function pictureStats({ data, width, height }) {
  const grey = new Float32Array(width * height);
  let sum = 0;
  for (let i = 0; i < grey.length; i++) {
    grey[i] = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
    sum += grey[i];
  }
  let edges = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      edges += Math.abs(4 * grey[i] - grey[i - 1] - grey[i + 1] - grey[i - width] - grey[i + width]);
    }
  }
  return { brightness: sum / grey.length, sharpness: edges / ((width - 2) * (height - 2)) };
}

// frames: Float32Array(543*3)[]; pictures: pictureStats per frame; seconds: the take's length; usesFace: the
// model reads the face. Returns [{check, hint}], empty for a good take.
export function checkTake(frames, pictures, seconds, { usesFace = true } = {}) {
  const hints = [];
  const add = (check, hint) => hints.push({ check, hint });
  const person = share(frames, (f) => found(f, NOSE));
  if (person < 0.5) {
    add("no_person", "No one was found in most of the take: stand in front of the camera with your head, shoulders and hands in view.");
    return hints;   // every other check would say the same again
  }
  const hands = share(frames, (f) => found(f, LEFT_HAND) || found(f, RIGHT_HAND));
  const outside = share(frames, (f) => [LEFT_WRIST, RIGHT_WRIST].some((w) => {
    const x = f[w * 3], y = f[w * 3 + 1];
    return !Number.isNaN(x) && (x < 0 || x > 1 || y < 0);   // below the picture is a hand at rest
  }));
  if (outside > 0.2) add("hands_out", "A hand left the picture: step back, or turn the camera so that your raised hands stay in view.");
  // A take is mostly rest around a short sign (MLR511: hands seen in 20-40 % of a clip with its rest), so
  // hands seen in under a tenth of it mean they were hidden or not found.
  if (hands < 0.1) add("hands_missing", "Your hands were hardly ever found: sign in front of your body, in good light, hands in view.");
  const signing = hands * seconds;
  if (hands >= 0.1 && signing < 0.4) add("too_short", "The sign was very short or very fast: sign at your usual pace, and start after the countdown.");
  if (usesFace && share(frames, (f) => found(f, FACE)) < 0.5) {
    add("face_hidden", "Your face was not found in most of the take, and this model reads the face: face the camera and keep your face uncovered.");
  }
  const mean = (key) => pictures.reduce((s, p) => s + p[key], 0) / Math.max(1, pictures.length);
  if (pictures.length && mean("brightness") < 50) add("too_dark", "The picture is too dark: turn on a light in front of you, not behind you.");
  if (pictures.length && mean("sharpness") < 1.5) add("blurred", "The picture is blurred: clean the lens, hold the camera still, or add light.");
  return hints;
}
