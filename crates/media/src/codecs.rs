//! The codecs stylize writes: for each, FFmpeg's encoder, its options from `--crf` and `--preset`, its pixel format and the containers that hold it.
//!
//! H.264 (libx264) is the default, for delivery. HEVC (libx265) and AV1 (libsvtav1) make smaller
//! files for delivery; ProRes (prores_ks) is for editing; FFV1 is a lossless archive. `--crf` and
//! `--preset` are x264's scales, mapped onto each encoder's own: x265 takes both as they are; SVT-AV1
//! takes CRF × 63/51 (so 18 becomes 22) and a preset number (ultrafast 12 … placebo 1); ProRes and
//! FFV1 have neither (ProRes has its profile, FFV1 is lossless).

use ffmpeg_next::ffi::AVPixelFormat;

use crate::pixels::PixelFormatChoice;

/// A ProRes profile, lightest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProResProfile {
    Proxy,
    Lt,
    Standard,
    Hq,
    /// 4:4:4.
    P4444,
}

impl ProResProfile {
    pub const ALL: [ProResProfile; 5] = [
        ProResProfile::Proxy,
        ProResProfile::Lt,
        ProResProfile::Standard,
        ProResProfile::Hq,
        ProResProfile::P4444,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProResProfile::Proxy => "proxy",
            ProResProfile::Lt => "lt",
            ProResProfile::Standard => "standard",
            ProResProfile::Hq => "hq",
            ProResProfile::P4444 => "4444",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// prores_ks's `profile` number.
    fn number(self) -> u8 {
        self as u8
    }
}

/// The codec the video is encoded with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VideoCodec {
    #[default]
    H264,
    Hevc,
    Av1,
    ProRes(ProResProfile),
    Ffv1,
}

impl VideoCodec {
    /// Every codec, ProRes in its default profile (HQ).
    pub const ALL: [VideoCodec; 5] = [
        VideoCodec::H264,
        VideoCodec::Hevc,
        VideoCodec::Av1,
        VideoCodec::ProRes(ProResProfile::Hq),
        VideoCodec::Ffv1,
    ];

    /// The name `--codec` takes (`prores:hq` with its profile).
    pub fn name(self) -> String {
        match self {
            VideoCodec::ProRes(profile) => format!("prores:{}", profile.name()),
            other => other.family().to_string(),
        }
    }

    /// The codec's name without a profile.
    pub fn family(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Hevc => "hevc",
            VideoCodec::Av1 => "av1",
            VideoCodec::ProRes(_) => "prores",
            VideoCodec::Ffv1 => "ffv1",
        }
    }

    /// Reads [`VideoCodec::name`]'s form; `prores` alone is ProRes HQ.
    pub fn parse(name: &str) -> Option<Self> {
        let (family, profile) = match name.split_once(':') {
            Some((family, profile)) => (family, Some(profile)),
            None => (name, None),
        };
        match (family, profile) {
            ("prores", None) => Some(VideoCodec::ProRes(ProResProfile::Hq)),
            ("prores", Some(p)) => ProResProfile::parse(p).map(VideoCodec::ProRes),
            (_, Some(_)) => None,
            (f, None) => Self::ALL.into_iter().find(|c| c.family() == f),
        }
    }

    /// FFmpeg's encoder, by name (an id may resolve to another encoder).
    pub fn encoder(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::Hevc => "libx265",
            VideoCodec::Av1 => "libsvtav1",
            VideoCodec::ProRes(_) => "prores_ks",
            VideoCodec::Ffv1 => "ffv1",
        }
    }

    /// What the codec is for, in a few words.
    pub fn purpose(self) -> &'static str {
        match self {
            VideoCodec::H264 => "delivery: plays everywhere (default)",
            VideoCodec::Hevc => "delivery: about half H.264's size at the same look, slower",
            VideoCodec::Av1 => "delivery: smallest files; newer players",
            VideoCodec::ProRes(_) => "editing: every frame a keyframe, 10-bit 4:2:2 (4444: 4:4:4)",
            VideoCodec::Ffv1 => "archive: lossless, every frame a keyframe",
        }
    }

    /// The containers (by extension) that hold it.
    /// The bit depths it writes, for `stylize codecs`.
    pub fn bit_depths(self) -> &'static str {
        match self {
            VideoCodec::H264 => "8 (10 asked)",
            VideoCodec::Hevc | VideoCodec::Av1 | VideoCodec::Ffv1 => "8, 10",
            VideoCodec::ProRes(_) => "10",
        }
    }

    pub fn containers(self) -> &'static [&'static str] {
        match self {
            VideoCodec::H264 | VideoCodec::Hevc => &["mp4", "mov", "mkv"],
            VideoCodec::Av1 => &["mp4", "mkv"],
            VideoCodec::ProRes(_) => &["mov", "mkv"],
            VideoCodec::Ffv1 => &["mkv"],
        }
    }

    /// Whether `--crf` and `--preset` mean anything to it.
    pub fn takes_crf_and_preset(self) -> bool {
        matches!(self, VideoCodec::H264 | VideoCodec::Hevc | VideoCodec::Av1)
    }

    /// Whether this build's FFmpeg has the encoder.
    pub fn available(self) -> bool {
        crate::init().is_ok() && ffmpeg_next::encoder::find_by_name(self.encoder()).is_some()
    }

    /// The chroma when `--pixel-format` does not say: 4:2:0, which every player plays, except for
    /// FFV1, whose point (a lossless archive) 4:2:0 would undo.
    pub fn default_chroma(self) -> PixelFormatChoice {
        match self {
            VideoCodec::Ffv1 => PixelFormatChoice::Yuv444p,
            _ => PixelFormatChoice::Yuv420p,
        }
    }

    /// The pixel format frames are encoded in, from the chroma `--pixel-format` asks for; why not,
    /// when the codec cannot take it.
    pub(crate) fn pixel_format(self, choice: PixelFormatChoice) -> Result<AVPixelFormat, String> {
        use AVPixelFormat::*;
        Ok(match (self, choice) {
            (VideoCodec::H264 | VideoCodec::Hevc | VideoCodec::Ffv1, choice) => choice.av_format(),
            (VideoCodec::Av1, PixelFormatChoice::Yuv420p | PixelFormatChoice::Yuv420p10) => {
                choice.av_format()
            }
            (VideoCodec::Av1, _) => {
                return Err(
                    "SVT-AV1 encodes 4:2:0 only: use --pixel-format yuv420p or yuv420p10le".into(),
                )
            }
            // ProRes is 10-bit 4:2:2 (4:4:4 in its 4444 profile) whatever is asked.
            (VideoCodec::ProRes(ProResProfile::P4444), _) => AV_PIX_FMT_YUV444P10LE,
            (VideoCodec::ProRes(_), _) => AV_PIX_FMT_YUV422P10LE,
        })
    }

    /// Whether a source of more than 8 bits keeps them in this codec's output when no pixel
    /// format is named. H.264 stays 8-bit: High 10 plays on few devices.
    pub fn keeps_source_depth(self) -> bool {
        self != VideoCodec::H264
    }

    pub(crate) fn options(self, crf: f32, preset: &str) -> Vec<(&'static str, String)> {
        match self {
            VideoCodec::H264 => vec![("preset", preset.into()), ("crf", crf.to_string())],
            VideoCodec::Hevc => {
                // x265's CRF 0 is not lossless: that is a switch of its own. Its banner and
                // per-run statistics go to stderr unless told otherwise.
                let params = match crf == 0.0 {
                    true => "log-level=error:lossless=1",
                    false => "log-level=error",
                };
                vec![
                    ("preset", preset.into()),
                    ("crf", crf.to_string()),
                    ("x265-params", params.into()),
                ]
            }
            VideoCodec::Av1 => vec![
                ("preset", svt_av1_preset(preset).to_string()),
                ("crf", svt_av1_crf(crf).to_string()),
            ],
            VideoCodec::ProRes(profile) => vec![("profile", profile.number().to_string())],
            VideoCodec::Ffv1 => vec![("level", "3".into()), ("slicecrc", "1".into())],
        }
    }

    /// Frames between keyframes, where the codec should be told (intra-only codecs: 1).
    pub(crate) fn gop(self) -> Option<u32> {
        matches!(self, VideoCodec::ProRes(_) | VideoCodec::Ffv1).then_some(1)
    }

    /// Why `ext` (an output's extension, lower case) cannot hold this codec, with what would.
    pub fn refuse_container(self, ext: &str) -> Option<String> {
        (!self.containers().contains(&ext)).then(|| {
            format!(
                "the .{ext} container cannot hold {} video: use .{}",
                self.family(),
                self.containers().join(" or .")
            )
        })
    }
}

/// SVT-AV1's preset (0 slowest … 13 fastest) for an x264 preset name.
fn svt_av1_preset(x264: &str) -> u8 {
    match x264 {
        "ultrafast" => 12,
        "superfast" => 11,
        "veryfast" => 10,
        "faster" => 9,
        "fast" => 8,
        "medium" => 6,
        "slow" => 5,
        "slower" => 4,
        "veryslow" => 2,
        _ => 1,
    }
}

/// SVT-AV1's CRF (1–63) for x264's (0–51), scaled to the longer range.
fn svt_av1_crf(x264: f32) -> u8 {
    ((x264 * 63.0 / 51.0).round() as u8).clamp(1, 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for codec in VideoCodec::ALL {
            assert_eq!(VideoCodec::parse(&codec.name()), Some(codec));
        }
        for profile in ProResProfile::ALL {
            let codec = VideoCodec::ProRes(profile);
            assert_eq!(VideoCodec::parse(&codec.name()), Some(codec));
        }
        assert_eq!(
            VideoCodec::parse("prores"),
            Some(VideoCodec::ProRes(ProResProfile::Hq))
        );
        assert_eq!(VideoCodec::parse("h265"), None);
        assert_eq!(VideoCodec::parse("hevc:hq"), None);
    }

    #[test]
    fn x264_scales_map_onto_svt_av1s() {
        assert_eq!(svt_av1_crf(18.0), 22);
        assert_eq!(svt_av1_crf(0.0), 1);
        assert_eq!(svt_av1_crf(51.0), 63);
        assert_eq!(svt_av1_preset("fast"), 8);
        assert_eq!(svt_av1_preset("placebo"), 1);
    }

    #[test]
    fn containers_refuse_what_they_cannot_hold_and_say_what_would() {
        assert_eq!(VideoCodec::H264.refuse_container("mp4"), None);
        let prores = VideoCodec::ProRes(ProResProfile::Hq)
            .refuse_container("mp4")
            .unwrap();
        assert!(prores.contains(".mov"), "{prores}");
        let ffv1 = VideoCodec::Ffv1.refuse_container("mov").unwrap();
        assert!(ffv1.ends_with("use .mkv"), "{ffv1}");
    }
}
