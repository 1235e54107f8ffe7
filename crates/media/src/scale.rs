//! A swscale context that may cross threads before its first use, with the colour matrix set explicitly.

use std::ptr::NonNull;

use ffmpeg_next::ffi;

use crate::color::YuvConversion;

/// One pixel-format / size conversion with a fixed YUV matrix.
///
/// ffmpeg-next's scaler is `!Send` only because it wraps a raw pointer. An
/// `SwsContext` keeps no thread-local state, so owning it from one thread at a
/// time is sound; [`FrameReader`](crate::FrameReader) and
/// [`VideoWriter`](crate::VideoWriter) still create theirs lazily on the first
/// frame, on the thread that converts.
pub(crate) struct Scaler {
    ctx: NonNull<ffi::SwsContext>,
    src: (ffi::AVPixelFormat, i32, i32),
    dst: (ffi::AVPixelFormat, i32, i32),
}

// SAFETY: see the type's documentation; all use goes through `&mut self`.
unsafe impl Send for Scaler {}

impl Scaler {
    /// `yuv` describes whichever side is YUV (the source when decoding, the destination when encoding).
    pub fn new(
        src: (ffi::AVPixelFormat, i32, i32),
        dst: (ffi::AVPixelFormat, i32, i32),
        yuv: YuvConversion,
    ) -> Option<Self> {
        // Bilinear only matters for chroma resampling here (sizes match); it keeps
        // swscale's fast unscaled paths available.
        let flags = ffi::SWS_BILINEAR;
        // SAFETY: plain constructor; null filters and params are allowed.
        let raw = unsafe {
            ffi::sws_getContext(
                src.1,
                src.2,
                src.0,
                dst.1,
                dst.2,
                dst.0,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        let ctx = NonNull::new(raw)?;
        // SAFETY: the context is valid; the coefficient tables are static in swscale.
        // RGB sides ignore the range flag, so one call serves both directions;
        // 0 brightness and 1.0 (16.16) contrast and saturation are the neutral values.
        unsafe {
            let coeffs = ffi::sws_getCoefficients(yuv.sws_colorspace);
            let full = i32::from(yuv.full_range);
            ffi::sws_setColorspaceDetails(
                ctx.as_ptr(),
                coeffs,
                full,
                coeffs,
                full,
                0,
                1 << 16,
                1 << 16,
            );
        }
        Some(Scaler { ctx, src, dst })
    }

    /// Converts `input` into `output`, which must already hold buffers of the destination shape.
    pub fn run(&mut self, input: &ffi::AVFrame, output: &mut ffi::AVFrame) {
        debug_assert_eq!((output.width, output.height), (self.dst.1, self.dst.2));
        // SAFETY: both frames hold planes of the shapes this context was built for
        // (the callers rebuild it when the source changes and allocate to its shapes).
        unsafe {
            ffi::sws_scale(
                self.ctx.as_ptr(),
                input.data.as_ptr() as *const *const u8,
                input.linesize.as_ptr(),
                0,
                self.src.2,
                output.data.as_ptr(),
                output.linesize.as_ptr(),
            );
        }
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: created by sws_getContext and freed once.
        unsafe { ffi::sws_freeContext(self.ctx.as_ptr()) }
    }
}
