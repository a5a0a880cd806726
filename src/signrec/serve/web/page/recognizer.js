// Continuous signing in the browser: the same state machine as signrec/recognize/continuous.py (Segmenter and
// StreamRecognizer), so the page cuts and reports signs exactly as `signrec serve` and `signrec live` do.
// A sign starts when a hand is raised and moving, ends when the hands are lowered for `gap` s or held still
// for `maxHold` s; each cut is classified once, as a whole, with `pad` s of context before and after.
// No DOM here: `classify(frames)` is given (the ONNX model) and returns class probabilities.

export const N_LANDMARKS = 543;
const LEFT_SHOULDER = 11, RIGHT_SHOULDER = 12, LEFT_WRIST = 15, RIGHT_WRIST = 16;
const LEFT_HAND = 501, RIGHT_HAND = 522, HANDS_END = 543;

// continuous.StreamSettings' defaults; the page's model.json may override them.
export const DEFAULT_SETTINGS = {
  raise_level: 1.5, hysteresis: 0.3, gap: 0.2, still_speed: 0.8, max_hold: 2.0, min_sign: 0.4, pad: 0.5,
  threshold: 0.4, merge_gap: 0.5, stride: 3, window: 6.0, smoothing: 0.5, top_k: 3,
};
const EPS = 1e-6;

// frame: Float32Array(543 * 3), NaN where not detected.
const at = (frame, point, axis) => frame[point * 3 + axis];

class Segmenter {
  constructor(s) {
    this.s = s;
    this.signing = false;
    this.index = -1;
    this.prev = null;         // {t, frame} of the previous frame
    this.scale = null;        // running shoulder width and height, for frames without pose
    this.shoulderY = null;
    this.cut = null;
    this.loweredSince = null;
    this.stillSince = null;
    this.times = [];          // recent frame times, to find the padded start of a cut
  }

  // One frame; returns a finished cut {start, end, first, last, closed} when one just ended.
  push(frame, t) {
    const s = this.s;
    this.index += 1;
    const height = this.wristHeight(frame);
    const speed = this.speed(frame, t);
    this.times.push(t);
    while (this.times.length > 1 && t - this.times[0] > s.pad + EPS) this.times.shift();
    if (!this.signing) {
      const moving = speed === null || speed >= s.still_speed;
      if (height !== null && height <= s.raise_level && moving) {
        this.signing = true;
        this.cut = { start: t, end: t, first: this.index - this.times.length + 1, last: this.index, closed: -1 };
        this.loweredSince = this.stillSince = null;
      }
      return null;
    }
    const lowered = height === null || height > s.raise_level + s.hysteresis;
    if (lowered) {
      if (this.loweredSince === null) this.loweredSince = t;
    } else {
      this.loweredSince = null;
      this.cut.end = t;
      this.cut.last = this.index;
    }
    const still = speed !== null && speed < s.still_speed;
    this.stillSince = still ? (this.stillSince !== null ? this.stillSince : t) : null;
    if ((this.loweredSince !== null && t - this.loweredSince >= s.gap) ||
        (this.stillSince !== null && t - this.stillSince >= s.max_hold)) return this.finish();
    return null;
  }

  finish() {
    const cut = this.cut;
    this.cut = null;
    this.signing = false;
    if (cut) cut.closed = this.index;
    return cut;
  }

  // Height of the higher wrist below the shoulder line, in shoulder widths (null: no hand seen).
  wristHeight(frame) {
    const lx = at(frame, LEFT_SHOULDER, 0), rx = at(frame, RIGHT_SHOULDER, 0);
    if (!Number.isNaN(lx) && !Number.isNaN(rx)) {
      const ly = at(frame, LEFT_SHOULDER, 1), ry = at(frame, RIGHT_SHOULDER, 1);
      const width = Math.hypot(lx - rx, ly - ry);
      if (width > 1e-4) {
        this.scale = this.scale === null ? width : 0.9 * this.scale + 0.1 * width;
        const y = (ly + ry) / 2;
        this.shoulderY = this.shoulderY === null ? y : 0.9 * this.shoulderY + 0.1 * y;
      }
    }
    // A detected hand's own wrist is more precise than the pose estimate of it.
    const ys = [[LEFT_HAND, LEFT_WRIST], [RIGHT_HAND, RIGHT_WRIST]]
      .map(([hand, pose]) => (Number.isNaN(at(frame, hand, 1)) ? at(frame, pose, 1) : at(frame, hand, 1)))
      .filter((y) => !Number.isNaN(y));
    if (!ys.length) return null;
    if (this.scale === null || this.shoulderY === null) {  // no body seen yet: a visible hand counts as raised
      const handsSeen = !Number.isNaN(at(frame, LEFT_HAND, 1)) || !Number.isNaN(at(frame, RIGHT_HAND, 1));
      return handsSeen ? this.s.raise_level : null;
    }
    return (Math.min(...ys) - this.shoulderY) / this.scale;
  }

  // Mean speed of the hand points seen in this and the previous frame, shoulder widths per second.
  speed(frame, t) {
    const prev = this.prev;
    this.prev = { t, frame };
    if (prev === null || this.scale === null || t <= prev.t) return null;
    let sum = 0, n = 0;
    for (let p = LEFT_HAND; p < HANDS_END; p++) {
      const d = Math.hypot(at(frame, p, 0) - at(prev.frame, p, 0), at(frame, p, 1) - at(prev.frame, p, 1));
      if (!Number.isNaN(d)) { sum += d; n += 1; }
    }
    return n ? sum / n / this.scale / (t - prev.t) : null;
  }
}

const argmax = (p) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);

export class StreamRecognizer {
  // labels: class names in output order; classify: async (frames: Float32Array[]) -> probabilities.
  constructor(labels, classify, settings = {}) {
    this.labels = labels;
    this.classify = classify;
    this.s = { ...DEFAULT_SETTINGS, ...settings };
    this.segmenter = new Segmenter(this.s);
    this.words = [];
    this.frames = [];   // frames since the padded start of the cut in progress, with their times
    this.times = [];
    this.smoothed = null;
    this.sinceUpdate = 0;
  }

  // One frame at time t (s); resolves to {top: [{label, p}], words, signing} once any classification is done.
  async push(frame, t) {
    const s = this.s;
    const wasSigning = this.segmenter.signing;
    const cut = this.segmenter.push(frame, t);
    this.frames.push(frame);
    this.times.push(t);
    if (!wasSigning && this.segmenter.signing) {  // a new sign: forget the last one
      this.smoothed = null;
      this.sinceUpdate = s.stride - 1;
    }
    if (cut) await this.close(cut);
    const keep = this.segmenter.signing ? s.window : s.pad;  // between signs keep only the padding context
    while (this.times.length > 1 && t - this.times[0] > keep + EPS) {
      this.times.shift();
      this.frames.shift();
    }
    if (!cut && this.segmenter.signing && ++this.sinceUpdate >= s.stride) {
      this.sinceUpdate = 0;
      this.update(await this.classify(this.frames));
    }
    return this.state();
  }

  // End of stream: classify the sign in progress, if any.
  async finish() {
    const cut = this.segmenter.finish();
    if (cut) await this.close(cut);
    return this.state();
  }

  state() {
    let top = [];
    if (this.smoothed) {
      top = [...this.smoothed.keys()].sort((a, b) => this.smoothed[b] - this.smoothed[a]).slice(0, this.s.top_k)
        .map((i) => ({ label: this.labels[i], p: Math.round(this.smoothed[i] * 1e4) / 1e4 }));
    }
    return { top, words: this.words.map((w) => ({ ...w })), signing: this.segmenter.signing };
  }

  update(proba) {
    const a = this.s.smoothing;
    this.smoothed = this.smoothed === null ? Array.from(proba)
      : this.smoothed.map((old, i) => a * proba[i] + (1 - a) * old);
  }

  // Classify a finished cut as a whole, padded, and report it as a word if it is long and sure enough.
  async close(cut) {
    const s = this.s;
    if (cut.end - cut.start < s.min_sign) return;
    const frames = this.frames.filter((_f, i) => cut.start - s.pad - EPS <= this.times[i] && this.times[i] <= cut.end + s.pad + EPS);
    const proba = Array.from(await this.classify(frames));
    this.smoothed = proba;
    const best = argmax(proba);
    const word = { label: this.labels[best], start: round3(cut.start), end: round3(cut.end),
      confidence: Math.round(proba[best] * 1e4) / 1e4 };
    if (word.confidence < s.threshold) return;
    const last = this.words[this.words.length - 1];
    if (last && last.label === word.label && word.start - last.end < s.merge_gap) {
      last.end = word.end;
      last.confidence = Math.max(last.confidence, word.confidence);
    } else this.words.push(word);
  }
}

const round3 = (x) => Math.round(x * 1000) / 1000;
