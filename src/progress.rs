//! Progress on the terminal: one bar per video (frames, fps, ETA) for local and cloud runs, all silenced by --quiet.
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stylize_core::cloud::coordinator::{InputProgress, Reporter};
use stylize_core::pipeline::FrameProgress;
use stylize_media::VideoInfo;

/// The look of every frame-counting bar: `template` with a `{per_sec}` key shown as `12.3 fps`.
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key(
            "per_sec",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} fps", state.per_sec());
            },
        )
        .progress_chars("=> ")
}

fn draw_target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A local run's progress bar, a no-op when quiet; shared by reference with the encoder thread.
pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, draw_target(quiet));
        Progress { bar, quiet }
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

impl FrameProgress for Progress {
    fn start(&self, info: &VideoInfo) {
        let name = info
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.bar.reset();
        self.bar.set_length(info.frame_count.unwrap_or(0));
        self.bar.set_prefix(name);
        self.bar.set_style(bar_style(if info.frame_count.is_some() {
            "{prefix:.bold} [{bar:32.cyan/blue}] {pos}/{len} frames  {per_sec}  ETA {eta}  {msg}"
        } else {
            "{prefix:.bold} {spinner} {pos} frames  {per_sec}  {msg}"
        }));
        self.bar.enable_steady_tick(Duration::from_millis(250));
    }

    fn frame_done(&self) {
        self.bar.inc(1);
    }

    fn iteration(&self, frame: u64, iteration: usize, of: usize) {
        self.bar.set_message(format!(
            "optimising frame {}: iteration {iteration}/{of}",
            frame + 1
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A cloud run's display: one bar per input, lines above them.
pub struct CloudProgress {
    multi: MultiProgress,
    quiet: bool,
}

impl CloudProgress {
    pub fn new(quiet: bool) -> Self {
        CloudProgress {
            multi: MultiProgress::with_draw_target(draw_target(quiet)),
            quiet,
        }
    }
}

impl Reporter for CloudProgress {
    fn say(&self, line: &str) {
        if !self.quiet {
            self.multi.suspend(|| eprintln!("{line}"));
        }
    }

    fn input(&self, name: &str) -> Box<dyn InputProgress> {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(bar_style(
            "{prefix:.bold} [{bar:28.cyan/blue}] {pos}/{len} {msg}  {per_sec}  ETA {eta}",
        ));
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Box::new(InputBar {
            bar,
            multi: self.multi.clone(),
        })
    }
}

struct InputBar {
    bar: ProgressBar,
    multi: MultiProgress,
}

impl InputProgress for InputBar {
    fn message(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }

    fn restart(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_eta();
    }

    fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    fn advance(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        self.multi.remove(&self.bar);
    }
}
