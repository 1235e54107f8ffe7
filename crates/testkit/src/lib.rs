//! stylize-testkit: the test helpers every suite of stylize shares — the ffmpeg/ffprobe CLIs, clip
//! generation, ffprobe queries, frame extraction, pixel comparisons and scratch folders.
//!
//! Dev-only (`publish = false`, a dev-dependency of the binary and of `stylize-media`), and it
//! depends on none of stylize's own crates: it checks their outputs with FFmpeg's own tools, never
//! with the code under test. Helpers panic with the tool's stderr on failure, as tests want.
//!
//! ```no_run
//! use stylize_testkit::*;
//! let dir = tempdir();
//! let clip = scene_clip(dir.path(), "in.mp4", "64x48", "25", 10, &[], &[]);
//! assert_eq!(decoded_frame_count(&clip), 10);
//! assert_eq!(rotation(&clip), 0);
//! let (w, h, rgb) = frame_rgb(&clip, 0);
//! assert_eq!(rgb.len(), (w * h * 3) as usize);
//! ```

pub mod cli;
pub mod files;
pub mod frames;
pub mod probing;

pub use cli::{copy_cut, ffmpeg, ffmpeg_stdout, ffprobe, hdr_clip, scene_clip};
pub use files::{listing, p, tempdir, unwritable_dir};
pub use frames::{
    all_frames, displayed_frame_rgb, edge_correlation, frame_rgb, frame_rgb48, mean_abs_diff,
    mean_abs_diff_16, shifted,
};
pub use probing::{
    audio_md5, audio_packets, audio_stream_count, audio_streams, decoded_frame_count,
    first_frame_time, format_duration, format_start, frame_times, num, probe_json, rotation,
    video_field, video_packets, video_span, video_stream,
};
