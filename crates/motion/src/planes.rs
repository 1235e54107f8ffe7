//! Pictures as OpenCV matrices: RGB24 (or 16-bit RGB) in, float RGB in [0,1], 8-bit grey and float luma.
use opencv::core::{self, Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;
use stylize_frame::RgbImage;

use crate::Result;

/// An 8-bit, 3-channel copy of `image`.
pub fn rgb_u8(image: &RgbImage) -> Result<Mat> {
    let flat = Mat::from_slice(&image.data)?;
    Ok(flat.reshape(3, image.height as i32)?.try_clone()?)
}

/// `image` as float RGB in [0,1], from its 16-bit samples when it has them.
pub fn rgb_f32(image: &RgbImage) -> Result<Mat> {
    match &image.deep {
        Some(deep) => {
            let flat = Mat::from_slice(deep)?;
            let rgb_u16 = flat.reshape(3, image.height as i32)?;
            let mut out = Mat::default();
            rgb_u16.convert_to(&mut out, core::CV_32FC3, 1.0 / 65535.0, 0.0)?;
            Ok(out)
        }
        None => unit_rgb(&rgb_u8(image)?),
    }
}

/// An 8-bit RGB matrix as float RGB in [0,1].
pub fn unit_rgb(rgb_u8: &Mat) -> Result<Mat> {
    let mut out = Mat::default();
    rgb_u8.convert_to(&mut out, core::CV_32FC3, 1.0 / 255.0, 0.0)?;
    Ok(out)
}

/// Grey (BT.601 luma) of an RGB matrix, in its depth (8-bit from 8-bit).
pub fn grey(rgb: &Mat) -> Result<Mat> {
    let mut out = Mat::default();
    imgproc::cvt_color(rgb, &mut out, imgproc::COLOR_RGB2GRAY, 0)?;
    Ok(out)
}

/// Grey as float in [0,1].
pub fn luma_f32(rgb_u8: &Mat) -> Result<Mat> {
    let mut out = Mat::default();
    grey(rgb_u8)?.convert_to(&mut out, core::CV_32F, 1.0 / 255.0, 0.0)?;
    Ok(out)
}

/// `mat` scaled to `width` columns (aspect kept), by area averaging; unchanged when already that wide.
pub fn shrink_to_width(mat: &Mat, width: i32) -> Result<Mat> {
    if mat.cols() <= width {
        return Ok(mat.try_clone()?);
    }
    let height =
        ((mat.rows() as i64 * width as i64 + mat.cols() as i64 / 2) / mat.cols() as i64).max(1);
    let mut out = Mat::default();
    imgproc::resize(
        mat,
        &mut out,
        Size::new(width, height as i32),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    Ok(out)
}

/// A Gaussian blur with the given sigma, cut at ±2 sigma (OpenCV's own choice for float pictures,
/// ±4 sigma, costs twice as much for a band split that looks the same).
pub fn blur(mat: &Mat, sigma: f64) -> Result<Mat> {
    let taps = blur_radius(sigma) as i32 * 2 + 1;
    let mut out = Mat::default();
    imgproc::gaussian_blur(
        mat,
        &mut out,
        Size::new(taps, taps),
        sigma,
        sigma,
        core::BORDER_REFLECT_101,
    )?;
    Ok(out)
}

/// How many pixels on each side [`blur`] reads.
pub fn blur_radius(sigma: f64) -> usize {
    (2.0 * sigma).ceil() as usize
}

/// Checks that two pictures have the same size.
pub fn same_size(a: &RgbImage, b: &RgbImage, what: &str) -> Result<()> {
    if (a.width, a.height) != (b.width, b.height) {
        return Err(crate::MotionError::Mismatch(format!(
            "{what}: {}x{} against {}x{}",
            a.width, a.height, b.width, b.height
        )));
    }
    Ok(())
}
