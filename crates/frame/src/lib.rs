//! stylize-frame: the one picture type every crate of stylize passes around — packed RGB24, row-major.
//!
//! The decoder fills it, the networks read and return it, the encoder and the
//! sheets consume it; nothing converts between picture types on the way.

/// A packed RGB24 picture: rows top to bottom, no padding, `data.len() == width * height * 3`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Bytes a `width` × `height` picture holds.
    pub fn byte_len(width: u32, height: u32) -> usize {
        width as usize * height as usize * 3
    }

    /// A picture of one colour, handy for tests and placeholders.
    pub fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let data = rgb
            .iter()
            .copied()
            .cycle()
            .take(Self::byte_len(width, height))
            .collect();
        RgbImage {
            width,
            height,
            data,
        }
    }

    /// Checks that the buffer length matches the size and neither side is zero.
    pub fn check(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 {
            return Err(format!("empty picture ({}x{})", self.width, self.height));
        }
        let want = Self::byte_len(self.width, self.height);
        if self.data.len() != want {
            return Err(format!(
                "{}x{} RGB needs {want} bytes, got {}",
                self.width,
                self.height,
                self.data.len()
            ));
        }
        Ok(())
    }

    /// Moves the pixels out, leaving an empty picture of the same size behind (no copy).
    pub fn take(&mut self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: std::mem::take(&mut self.data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solid_pictures_pass_their_check_and_bad_buffers_do_not() {
        let img = RgbImage::solid(3, 2, [1, 2, 3]);
        assert_eq!(img.data.len(), 18);
        assert_eq!(&img.data[..6], &[1, 2, 3, 1, 2, 3]);
        assert!(img.check().is_ok());
        let short = RgbImage {
            data: vec![0; 17],
            ..img.clone()
        };
        assert!(short.check().unwrap_err().contains("needs 18 bytes"));
        assert!(RgbImage::default().check().unwrap_err().contains("empty"));
    }

    #[test]
    fn take_moves_the_pixels() {
        let mut img = RgbImage::solid(2, 2, [9, 9, 9]);
        let moved = img.take();
        assert_eq!(moved.data.len(), 12);
        assert!(img.data.is_empty());
        assert_eq!((img.width, img.height), (2, 2));
    }
}
