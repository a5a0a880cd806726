// A recorded set of takes as a signrec landmark dataset: labels.csv (path, label, signer, repetition), one
// float32 (T, 543, 3) .npy per take (NaN where a part was not found) and manifest.json naming the landmark
// models, packed in a zip (stored, no compression: .npy of floats barely compresses). `signrec train` reads it.

// .npy version 1.0: magic, header length, a Python dict literal padded so the data starts at a multiple of 64.
export function npy(frames) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${frames.length}, 543, 3), }`;
  header += " ".repeat(64 - ((10 + header.length + 1) % 64)) + "\n";
  const out = new Uint8Array(10 + header.length + frames.length * 543 * 3 * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  const data = new Float32Array(out.buffer, 10 + header.length);   // little-endian on every browser platform
  frames.forEach((frame, i) => data.set(frame, i * 543 * 3));
  return out;
}

// A folder name for a label on every OS: letters (any script), digits, - and _ kept, the rest replaced.
export const safeName = (label) => label.normalize("NFC").replace(/[^\p{L}\p{N}_-]+/gu, "_").replace(/^_+|_+$/g, "") || "sign";

const CRC = new Uint32Array(256).map((_v, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
const crc32 = (bytes) => {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

// files: [{name, bytes}] -> a zip archive (stored entries, UTF-8 names).
export function zip(files) {
  const enc = new TextEncoder(), parts = [], central = [];
  let offset = 0;
  for (const { name, bytes } of files) {
    const path = enc.encode(name), crc = crc32(bytes);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint16(6, 0x0800, true);
    local.setUint32(14, crc, true); local.setUint32(18, bytes.length, true); local.setUint32(22, bytes.length, true);
    local.setUint16(26, path.length, true);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true); entry.setUint16(4, 20, true); entry.setUint16(6, 20, true);
    entry.setUint16(8, 0x0800, true); entry.setUint32(16, crc, true); entry.setUint32(20, bytes.length, true);
    entry.setUint32(24, bytes.length, true); entry.setUint16(28, path.length, true); entry.setUint32(42, offset, true);
    parts.push(new Uint8Array(local.buffer), path, bytes);
    central.push(new Uint8Array(entry.buffer), path);
    offset += 30 + path.length + bytes.length;
  }
  const size = central.reduce((n, p) => n + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/zip" });
}

const csvCell = (v) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

// takes: [{label, frames: Float32Array[]}] -> the files of the dataset.
export function datasetFiles(takes, signer, landmarks) {
  const rows = [["path", "label", "signer", "repetition"]];
  const files = [];
  const counts = {};
  for (const take of takes) {
    const n = counts[take.label] = (counts[take.label] || 0) + 1;
    const repetition = `R${String(n).padStart(2, "0")}`;
    const path = `${safeName(take.label)}/${safeName(signer)}_${repetition}.npy`;
    files.push({ name: path, bytes: npy(take.frames) });
    rows.push([path, take.label, signer, repetition]);
  }
  const enc = new TextEncoder();
  files.push({ name: "labels.csv", bytes: enc.encode(rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n") });
  files.push({ name: "manifest.json", bytes: enc.encode(JSON.stringify({
    extractor: { name: "@mediapipe/holistic in the browser (signrec record page)",
      settings: { face: landmarks.face, hand_model: landmarks.hand_model, model_complexity: 1 } },
    layout: "holistic-543-xyz", takes: takes.length }, null, 1)) });
  return files;
}
