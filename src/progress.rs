//! Progress reporting: one bar per video (frames, fps, ETA) and the end-of-run lines, all silenced by --quiet.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stylize_media::VideoInfo;

/// A progress bar that is a no-op when quiet; shared by reference with the encoder thread.
pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        };
        Progress { bar, quiet }
    }

    pub fn start(&self, info: &VideoInfo) {
        let name = info
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.bar.reset();
        self.bar.set_length(info.frame_count.unwrap_or(0));
        self.bar.set_prefix(name);
        let template = if info.frame_count.is_some() {
            "{prefix:.bold} [{bar:32.cyan/blue}] {pos}/{len} frames  {per_sec}  ETA {eta}"
        } else {
            "{prefix:.bold} {spinner} {pos} frames  {per_sec}"
        };
        self.bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .with_key(
                    "per_sec",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1} fps", state.per_sec());
                    },
                )
                .progress_chars("=> "),
        );
        self.bar.enable_steady_tick(Duration::from_millis(250));
    }

    pub fn frame_done(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A line for the user (summaries, where files went); suppressed by --quiet.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}

/// `83.4` → `1:23`, `3725` → `1:02:05`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
