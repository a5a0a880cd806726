// The skeleton over the camera picture: upper-body pose, hands, face points. Frames come from landmarks.forDrawing.

const HAND = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [5, 9], [9, 10], [10, 11],
  [11, 12], [9, 13], [13, 14], [14, 15], [15, 16], [13, 17], [17, 18], [18, 19], [19, 20], [0, 17]];
// Upper body only: the pose's face points (0-10) are left to the face mesh, legs are rarely in view.
const POSE = [[11, 12], [11, 13], [13, 15], [12, 14], [14, 16], [11, 23], [12, 24], [23, 24], [15, 17],
  [15, 19], [17, 19], [16, 18], [16, 20], [18, 20]];
const COLOURS = { pose: "#f5f5f5", face: "rgba(120, 220, 255, 0.55)", left_hand: "#ff9f1c", right_hand: "#2ec4b6" };

export function drawSkeleton(ctx, parts) {
  const w = ctx.canvas.width, h = ctx.canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.lineWidth = Math.max(2, w / 320);
  const pt = (p) => [p[0] * w, p[1] * h];
  if (parts.face) {
    ctx.fillStyle = COLOURS.face;
    for (const p of parts.face) if (p) { const [x, y] = pt(p); ctx.fillRect(x - 0.75, y - 0.75, 1.5, 1.5); }
  }
  const bones = (points, pairs, colour) => {
    if (!points) return;
    ctx.strokeStyle = colour; ctx.fillStyle = colour;
    ctx.beginPath();
    for (const [a, b] of pairs) {
      if (!points[a] || !points[b]) continue;
      ctx.moveTo(...pt(points[a])); ctx.lineTo(...pt(points[b]));
    }
    ctx.stroke();
    for (const p of points) if (p) { const [x, y] = pt(p); ctx.beginPath(); ctx.arc(x, y, ctx.lineWidth * 1.2, 0, 2 * Math.PI); ctx.fill(); }
  };
  bones(parts.pose && parts.pose.map((p, i) => (i >= 11 && i < 25 ? p : null)), POSE, COLOURS.pose);
  bones(parts.left_hand, HAND, COLOURS.left_hand);
  bones(parts.right_hand, HAND, COLOURS.right_hand);
}
