"""Paints samples/swirls.jpg, the sample style picture: bold brush-like swirls (line-integral
convolution of noise along a vortex flow field, coloured with a night-sky palette). Run once;
the JPEG is committed so setup needs nothing but this repository."""
import sys

import numpy as np
from PIL import Image

size = 512
rng = np.random.default_rng(7)
y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
# A few vortices make the flow field.
vx = np.zeros_like(x); vy = np.zeros_like(x)
for cx, cy, s in [(0.3, 0.35, 1.0), (0.72, 0.3, -0.8), (0.5, 0.75, 0.9), (0.15, 0.8, -0.6), (0.85, 0.78, 0.7)]:
    dx, dy = x - cx, y - cy
    r2 = dx * dx + dy * dy + 0.01
    vx += -s * dy / r2; vy += s * dx / r2
vx += 2.0; vy += 0.6 * np.sin(6 * x)
norm = np.sqrt(vx * vx + vy * vy) + 1e-6
vx /= norm; vy /= norm
noise = rng.random((size, size)).astype(np.float32)
acc = np.zeros_like(noise); px, py = x * size, y * size
for direction in (1, -1):
    qx, qy = px.copy(), py.copy()
    for _ in range(18):
        ix = np.clip(qx.astype(int), 0, size - 1); iy = np.clip(qy.astype(int), 0, size - 1)
        acc += noise[iy, ix]
        qx += direction * vx[iy, ix] * 1.5; qy += direction * vy[iy, ix] * 1.5
lic = (acc - acc.min()) / (acc.max() - acc.min())
bands = (np.sin(lic * 22 + 3 * x) + 1) / 2
palette = np.array([[12, 24, 74], [30, 70, 160], [70, 140, 210], [240, 210, 80], [250, 240, 190]], np.float32)
t = np.clip(0.65 * bands + 0.35 * lic + 0.25 * (1 - y) - 0.1, 0, 1) * (len(palette) - 1)
lo = np.floor(t).astype(int); hi = np.minimum(lo + 1, len(palette) - 1); f = (t - lo)[..., None]
rgb = palette[lo] * (1 - f) + palette[hi] * f
Image.fromarray(rgb.astype(np.uint8)).save(sys.argv[1] if len(sys.argv) > 1 else "samples/swirls.jpg", quality=90)
