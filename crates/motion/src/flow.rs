//! Dense optical flow between two frames (OpenCV's DIS), as sampling maps at full size.
use std::ops::Range;

use opencv::core::{self, Mat, Ptr, Scalar, Size, Vec2f};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::video::{self, DISOpticalFlow};

use crate::planes;
use crate::Result;

/// DIS optical flow at a fixed working width.
pub struct FlowEstimator {
    dis: Ptr<DISOpticalFlow>,
    width: i32,
}

/// Where each pixel of one frame came from in another: sampling maps for `remap`, plus whether the
/// source lies inside the frame at all.
pub struct Flow {
    pub map_x: Mat,
    pub map_y: Mat,
    pub inside: Vec<bool>,
}

impl FlowEstimator {
    /// DIS `medium` at `width` columns: the preset that tracks strokes well (the `fast` ones leave
    /// 2–3× the warping error at the same cost once the frame is shrunk).
    pub fn new(width: i32) -> Result<Self> {
        Ok(FlowEstimator {
            dis: DISOpticalFlow::create(video::DISOpticalFlow_PRESET_MEDIUM)?,
            width,
        })
    }

    /// A frame's 8-bit grey at the working width, the form [`Self::between`] takes.
    pub fn prepare(&self, rgb_u8: &Mat) -> Result<Mat> {
        planes::shrink_to_width(&planes::grey(rgb_u8)?, self.width)
    }

    /// Raw flow from `from` to `to` (both from [`Self::prepare`]): `from(x) ≈ to(x + flow(x))`.
    pub fn raw(&mut self, from: &Mat, to: &Mat) -> Result<Mat> {
        let mut flow = Mat::default();
        self.dis.calc(from, to, &mut flow)?;
        Ok(flow)
    }

    /// Maps that pull `to`'s pixels onto `from`'s grid at `size` (full resolution).
    pub fn between(&mut self, from: &Mat, to: &Mat, size: Size) -> Result<Flow> {
        let raw = self.raw(from, to)?;
        Flow::from_raw(&raw, size)
    }
}

impl Flow {
    /// Sampling maps at `size` from a (possibly smaller) raw flow field.
    pub fn from_raw(raw: &Mat, size: Size) -> Result<Flow> {
        let scale_x = size.width as f32 / raw.cols() as f32;
        let scale_y = size.height as f32 / raw.rows() as f32;
        let mut full = Mat::default();
        if raw.size()? == size {
            full = raw.try_clone()?;
        } else {
            imgproc::resize(raw, &mut full, size, 0.0, 0.0, imgproc::INTER_LINEAR)?;
        }
        let (w, h) = (size.width as usize, size.height as usize);
        let mut map_x = Mat::new_rows_cols_with_default(
            size.height,
            size.width,
            core::CV_32F,
            Scalar::all(0.0),
        )?;
        let mut map_y = map_x.try_clone()?;
        let mut inside = vec![false; w * h];
        {
            let field = full.data_typed::<Vec2f>()?;
            let xs = map_x.data_typed_mut::<f32>()?;
            let ys = map_y.data_typed_mut::<f32>()?;
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    let sx = x as f32 + field[i][0] * scale_x;
                    let sy = y as f32 + field[i][1] * scale_y;
                    xs[i] = sx;
                    ys[i] = sy;
                    inside[i] =
                        sx >= 0.0 && sy >= 0.0 && sx <= (w - 1) as f32 && sy <= (h - 1) as f32;
                }
            }
        }
        Ok(Flow {
            map_x,
            map_y,
            inside,
        })
    }

    /// ‖∇u‖² + ‖∇v‖² of the flow per pixel, in pixels per pixel (central differences of the
    /// sampling maps, one-sided at the border): how much the flow stretches or shears there. The
    /// steadier's trust and the warping error's motion-boundary mask both read it.
    pub fn stretch(&self) -> Result<Vec<f32>> {
        let (xs, ys) = (
            self.map_x.data_typed::<f32>()?,
            self.map_y.data_typed::<f32>()?,
        );
        let (w, h) = (self.map_x.cols() as usize, self.map_x.rows() as usize);
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
            let dy = (down - up).max(1) as f32;
            for x in 0..w {
                let (left, right) = (x.saturating_sub(1), (x + 1).min(w - 1));
                let dx = (right - left).max(1) as f32;
                // map = position + flow, so the flow's derivative is the map's minus the identity's
                // (which is 1 along its own axis only where there is a neighbour to difference).
                let along_x = if right > left { 1.0 } else { 0.0 };
                let along_y = if down > up { 1.0 } else { 0.0 };
                let ux = (xs[y * w + right] - xs[y * w + left]) / dx - along_x;
                let uy = (xs[down * w + x] - xs[up * w + x]) / dy;
                let vx = (ys[y * w + right] - ys[y * w + left]) / dx;
                let vy = (ys[down * w + x] - ys[up * w + x]) / dy - along_y;
                out[y * w + x] = ux * ux + uy * uy + vx * vx + vy * vy;
            }
        }
        Ok(out)
    }

    /// `image` resampled along the flow (`interpolation` is an OpenCV `INTER_*`); pixels whose
    /// source falls outside repeat the border.
    pub fn warp(&self, image: &Mat, interpolation: i32) -> Result<Mat> {
        self.warp_rows(image, 0..self.map_x.rows() as usize, interpolation)
    }

    /// Rows `rows` of [`Flow::warp`]'s result (the whole of `image` is read).
    pub fn warp_rows(&self, image: &Mat, rows: Range<usize>, interpolation: i32) -> Result<Mat> {
        let (start, end) = (rows.start as i32, rows.end as i32);
        let mut out = Mat::default();
        imgproc::remap(
            image,
            &mut out,
            &self.map_x.row_bounds(start, end)?,
            &self.map_y.row_bounds(start, end)?,
            interpolation,
            core::BORDER_REPLICATE,
            Scalar::all(0.0),
        )?;
        Ok(out)
    }
}
