//! Pictures in memory for sheets and thumbnails: a drawing surface, resizing, and PNG/JPEG encoding.
use anyhow::{Context, Result};
use image::imageops::FilterType;
use stylize_frame::RgbImage;

/// A packed RGB24 surface that clips everything drawn outside it.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    data: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, color: [u8; 3]) -> Self {
        let RgbImage {
            width,
            height,
            data,
            ..
        } = RgbImage::solid(width, height, color);
        Canvas {
            width,
            height,
            data,
        }
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: u32, h: u32, color: [u8; 3]) {
        let (x0, y0) = (x.max(0), y.max(0));
        let (x1, y1) = (
            (x + w as i64).min(self.width as i64),
            (y + h as i64).min(self.height as i64),
        );
        for row in y0..y1 {
            let start = (row as usize * self.width as usize + x0 as usize) * 3;
            for px in self.data[start..start + (x1 - x0).max(0) as usize * 3].chunks_exact_mut(3) {
                px.copy_from_slice(&color);
            }
        }
    }

    /// A one-pixel outline just outside the rectangle (x, y, w, h).
    pub fn outline(&mut self, x: i64, y: i64, w: u32, h: u32, color: [u8; 3]) {
        self.fill_rect(x - 1, y - 1, w + 2, 1, color);
        self.fill_rect(x - 1, y + h as i64, w + 2, 1, color);
        self.fill_rect(x - 1, y, 1, h, color);
        self.fill_rect(x + w as i64, y, 1, h, color);
    }

    /// Copies `img` with its top-left corner at (x, y).
    pub fn blit(&mut self, img: &RgbImage, x: i64, y: i64) {
        for row in 0..img.height as i64 {
            let ty = y + row;
            if ty < 0 || ty >= self.height as i64 {
                continue;
            }
            let (sx0, tx0) = if x < 0 { (-x, 0) } else { (0, x) };
            let n = (img.width as i64 - sx0).min(self.width as i64 - tx0);
            if n <= 0 {
                continue;
            }
            let src = ((row * img.width as i64 + sx0) * 3) as usize;
            let dst = ((ty * self.width as i64 + tx0) * 3) as usize;
            self.data[dst..dst + n as usize * 3]
                .copy_from_slice(&img.data[src..src + n as usize * 3]);
        }
    }

    pub fn into_image(self) -> RgbImage {
        RgbImage::new(self.width, self.height, self.data)
    }
}

/// The largest size with `img`'s aspect that fits in `max_w` × `max_h` (never 0).
pub fn fit_size(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let scale = (max_w as f64 / width as f64).min(max_h as f64 / height as f64);
    let w = ((width as f64 * scale).round() as u32).clamp(1, max_w);
    let h = ((height as f64 * scale).round() as u32).clamp(1, max_h);
    (w, h)
}

/// Resizes to exactly `width` × `height` with a Lanczos filter (sharp, no aliasing when shrinking).
pub fn resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if img.width == width && img.height == height {
        return img.clone();
    }
    let out = image::imageops::resize(&to_buffer(img.clone()), width, height, FilterType::Lanczos3);
    from_buffer(out)
}

/// The `image` crate's view of a picture (moves the pixels, no copy).
pub fn to_buffer(img: RgbImage) -> image::RgbImage {
    image::RgbImage::from_raw(img.width, img.height, img.data).expect("RGB buffer of its own size")
}

/// A picture from the `image` crate's buffer (moves the pixels, no copy).
pub fn from_buffer(buffer: image::RgbImage) -> RgbImage {
    let (width, height) = buffer.dimensions();
    RgbImage::new(width, height, buffer.into_raw())
}

/// Shrinks (or enlarges) to fit a box, keeping the aspect ratio.
pub fn resize_to_fit(img: &RgbImage, max_w: u32, max_h: u32) -> RgbImage {
    let (w, h) = fit_size(img.width, img.height, max_w, max_h);
    resize(img, w, h)
}

/// A display rotation (degrees counter-clockwise, as `VideoInfo::rotation_degrees` and ffprobe give
/// it) as quarter turns counter-clockwise, 0–3. Players only honour multiples of 90°, so an odd angle
/// counts as the nearest one.
pub fn quarter_turns(degrees: i32) -> u8 {
    ((degrees as f64 / 90.0).round() as i64).rem_euclid(4) as u8
}

/// The size a player shows a `width` × `height` coded picture at under `degrees` of rotation.
pub fn displayed_size(width: u32, height: u32, degrees: i32) -> (u32, u32) {
    if quarter_turns(degrees) % 2 == 1 {
        (height, width)
    } else {
        (width, height)
    }
}

/// A decoded frame (coded orientation) turned the way a player shows it: frames are decoded as
/// stored, and the display matrix only tells the player to rotate them, so a sheet must do the same.
pub fn displayed(frame: RgbImage, degrees: i32) -> RgbImage {
    rotate_ccw(frame, quarter_turns(degrees))
}

/// Maps source pixel (x, y) of a w × h picture to its place in the turned one.
type Placement = fn(usize, usize, usize, usize) -> (usize, usize);

/// `img` turned `turns` quarter turns counter-clockwise.
pub fn rotate_ccw(img: RgbImage, turns: u8) -> RgbImage {
    let (w, h) = (img.width as usize, img.height as usize);
    // The output's size, and where source pixel (x, y) of a w × h picture lands.
    let (out_w, out_h, place): (usize, usize, Placement) = match turns % 4 {
        0 => return img,
        // Counter-clockwise: the top-right corner becomes the top-left.
        1 => (h, w, |x, y, w, _| (y, w - 1 - x)),
        2 => (w, h, |x, y, w, h| (w - 1 - x, h - 1 - y)),
        // Clockwise: the top-left corner becomes the top-right.
        _ => (h, w, |x, y, _, h| (h - 1 - y, x)),
    };
    let mut data = vec![0u8; img.data.len()];
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = place(x, y, w, h);
            let (src, dst) = ((y * w + x) * 3, (dy * out_w + dx) * 3);
            data[dst..dst + 3].copy_from_slice(&img.data[src..src + 3]);
        }
    }
    RgbImage::new(out_w as u32, out_h as u32, data)
}

/// PNG bytes; `text` adds one UTF-8 metadata chunk (keyword, value) that tools can read back.
pub fn encode_png(img: &RgbImage, text: Option<(&str, &str)>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, img.width, img.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        if let Some((key, value)) = text {
            encoder
                .add_itxt_chunk(key.to_string(), value.to_string())
                .context("PNG metadata")?;
        }
        let mut writer = encoder.write_header().context("PNG header")?;
        writer.write_image_data(&img.data).context("PNG data")?;
        writer.finish().context("PNG end")?;
    }
    Ok(bytes)
}

/// Baseline JPEG bytes at `quality` (1–100).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    encoder
        .encode(
            &img.data,
            img.width,
            img.height,
            image::ExtendedColorType::Rgb8,
        )
        .context("JPEG encoding")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit_size(1920, 1080, 320, 320), (320, 180));
        assert_eq!(fit_size(720, 720, 240, 200), (200, 200));
        assert_eq!(fit_size(1, 5000, 100, 100), (1, 100));
    }

    #[test]
    fn rotations_turn_counter_clockwise() {
        // 2×1: red | green.
        let img = RgbImage::new(2, 1, vec![255, 0, 0, 0, 255, 0]);
        // A quarter turn counter-clockwise puts the right-hand pixel on top.
        let ccw = rotate_ccw(img.clone(), 1);
        assert_eq!(
            (ccw.width, ccw.height, ccw.data.as_slice()),
            (1, 2, [0, 255, 0, 255, 0, 0].as_slice())
        );
        let cw = rotate_ccw(img.clone(), 3);
        assert_eq!(
            (cw.width, cw.height, cw.data.as_slice()),
            (1, 2, [255, 0, 0, 0, 255, 0].as_slice())
        );
        assert_eq!(rotate_ccw(img.clone(), 2).data, vec![0, 255, 0, 255, 0, 0]);
        assert_eq!(rotate_ccw(rotate_ccw(img.clone(), 1), 3).data, img.data);
        assert_eq!(
            [
                quarter_turns(0),
                quarter_turns(90),
                quarter_turns(-90),
                quarter_turns(180),
                quarter_turns(-180)
            ],
            [0, 1, 3, 2, 2]
        );
        // 2×2 [a b; c d]: counter-clockwise [b d; a c], clockwise [c a; d b], half [d c; b a].
        let square = RgbImage::new(2, 2, [1u8, 2, 3, 4].iter().flat_map(|&v| [v; 3]).collect());
        let firsts = |img: RgbImage| img.data.iter().step_by(3).copied().collect::<Vec<u8>>();
        assert_eq!(firsts(rotate_ccw(square.clone(), 1)), vec![2, 4, 1, 3]);
        assert_eq!(firsts(rotate_ccw(square.clone(), 3)), vec![3, 1, 4, 2]);
        assert_eq!(firsts(rotate_ccw(square, 2)), vec![4, 3, 2, 1]);
        assert_eq!(quarter_turns(271), 3);
        assert_eq!(displayed_size(200, 120, -90), (120, 200));
    }

    #[test]
    fn drawing_clips_at_the_edges() {
        let mut c = Canvas::new(4, 3, [0, 0, 0]);
        c.fill_rect(-2, 1, 10, 1, [9, 9, 9]);
        let img = RgbImage::new(2, 2, vec![200; 12]);
        c.blit(&img, 3, -1);
        let out = c.into_image();
        assert_eq!(&out.data[12..24], &[9; 12]);
        assert_eq!(&out.data[9..12], &[200; 3]);
        assert_eq!(&out.data[0..9], &[0; 9]);
    }
}
