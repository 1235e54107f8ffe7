//! stylize-frame: the one picture type every crate of stylize passes around — packed RGB24, row-major, with its 16-bit samples when the source was deeper than 8 bits.
//!
//! The decoder fills it, the networks read and return it, the encoder and the
//! sheets consume it; nothing converts between picture types on the way.

/// A packed RGB24 picture: rows top to bottom, no padding, `data.len() == width * height * 3`.
///
/// A picture from a source of more than 8 bits per sample (10-bit video) also holds `deep`: the
/// same samples at 16 bits (0..=65535), which the network, the steadier and a 10-bit encoder read
/// instead, so no 8-bit step comes between a 10-bit input and a 10-bit output. `data` is then
/// `deep` rounded to 8 bits, for everything that shows or measures a picture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    pub deep: Option<Vec<u16>>,
}

impl RgbImage {
    /// An 8-bit picture.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Self {
        RgbImage {
            width,
            height,
            data,
            deep: None,
        }
    }

    /// A picture from its 16-bit samples; `data` becomes their rounding to 8 bits.
    pub fn from_deep(width: u32, height: u32, deep: Vec<u16>) -> Self {
        let data = deep.iter().map(|&v| to_8_bits(v)).collect();
        RgbImage {
            width,
            height,
            data,
            deep: Some(deep),
        }
    }

    /// Whether the picture carries 16-bit samples.
    pub fn is_deep(&self) -> bool {
        self.deep.is_some()
    }

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
        RgbImage::new(width, height, data)
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
        match &self.deep {
            Some(deep) if deep.len() != want => Err(format!(
                "{}x{} RGB needs {want} 16-bit samples, got {}",
                self.width,
                self.height,
                deep.len()
            )),
            _ => Ok(()),
        }
    }

    /// Moves the pixels out, leaving an empty picture of the same size behind (no copy).
    pub fn take(&mut self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: std::mem::take(&mut self.data),
            deep: self.deep.take(),
        }
    }
}

/// A 16-bit sample rounded to the nearest 8-bit one (65535 / 255 = 257 exactly).
pub fn to_8_bits(sample: u16) -> u8 {
    ((u32::from(sample) + 128) / 257) as u8
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
        let shallow = RgbImage {
            deep: Some(vec![0; 17]),
            ..img.clone()
        };
        assert!(shallow.check().unwrap_err().contains("18 16-bit samples"));
    }

    #[test]
    fn deep_pictures_round_to_the_nearest_8_bit_sample() {
        let deep = vec![0, 128, 129, 257, 65535, 65535 - 128];
        let img = RgbImage::from_deep(2, 1, deep.clone());
        assert_eq!(img.data, vec![0, 0, 1, 1, 255, 255]);
        assert_eq!(img.deep, Some(deep));
        assert!(img.check().is_ok() && img.is_deep());
        for v in 0..=255u8 {
            assert_eq!(to_8_bits(u16::from(v) * 257), v);
        }
    }

    #[test]
    fn take_moves_the_pixels() {
        let mut img = RgbImage::from_deep(2, 2, vec![9; 12]);
        let moved = img.take();
        assert_eq!(moved.data.len(), 12);
        assert_eq!(moved.deep.as_ref().map(Vec::len), Some(12));
        assert!(img.data.is_empty() && img.deep.is_none());
        assert_eq!((img.width, img.height), (2, 2));
    }
}
