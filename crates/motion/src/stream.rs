//! Steadying a stream of frames at the speed of a GPU: frames ahead are prepared on background threads while earlier ones are carried in order, in bands.
//!
//! On a CPU the network is the bound and one thread steadies with time to spare; beside a GPU the
//! steadier is (a 720×720 frame costs it ~45 ms of CPU, the network ~3 ms of GPU). Most of that is
//! preparing — optical flow, trust, scene cuts, the styled frame's bands — which needs nothing
//! earlier, so several frames are prepared at once; carrying the previous output along the motion
//! stays in order and splits each frame into bands of rows instead.
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use stylize_frame::RgbImage;

use crate::steady::{MotionAnalyser, Prepared, Steadier, SteadyFrame};
use crate::{MotionError, Result};

/// A steadied frame, in the order it was pushed.
pub struct Steadied<T> {
    /// What the caller pushed with the frame.
    pub tag: T,
    pub original: Arc<RgbImage>,
    pub image: RgbImage,
    pub frame: SteadyFrame,
}

/// A [`Steadier`] that looks ahead: [`SteadyStream::push`] frames in order and take each back
/// steadied, in order, once enough later frames are in flight (or from [`SteadyStream::next_left`]
/// at the end). The output is the same as one [`Steadier`]'s, frame by frame.
pub struct SteadyStream<T> {
    steadier: Steadier,
    preparers: Preparers,
    in_flight: VecDeque<InFlight<T>>,
    previous_original: Option<Arc<RgbImage>>,
}

struct InFlight<T> {
    tag: T,
    original: Arc<RgbImage>,
    prepared: mpsc::Receiver<Result<Prepared>>,
}

impl<T> SteadyStream<T> {
    /// A stream at `level` (as [`Steadier::new`]) on [`steadying_threads`] threads; `None` at
    /// level 0.
    pub fn at(level: f32) -> Option<Self> {
        Self::with_threads(level, steadying_threads())
    }

    /// As [`SteadyStream::at`], on `threads` threads (at least one): as many frames prepared at
    /// once, and as many bands carried side by side.
    pub fn with_threads(level: f32, threads: usize) -> Option<Self> {
        let threads = threads.max(1);
        Some(SteadyStream {
            steadier: (level > 0.0).then(|| Steadier::in_bands(level, threads))?,
            preparers: Preparers::start(threads),
            in_flight: VecDeque::new(),
            previous_original: None,
        })
    }

    /// Takes the next frame in order; returns the oldest frame, steadied, once more than the
    /// look-ahead (see [`look_ahead`]) are in flight.
    pub fn push(
        &mut self,
        tag: T,
        original: RgbImage,
        styled: RgbImage,
    ) -> Result<Option<Steadied<T>>> {
        let look_ahead = look_ahead(self.preparers.threads, &original);
        let original = Arc::new(original);
        let previous = self.previous_original.replace(original.clone());
        let prepared = self.preparers.prepare(previous, original.clone(), styled);
        self.in_flight.push_back(InFlight {
            tag,
            original,
            prepared,
        });
        if self.in_flight.len() > look_ahead {
            return self.next_left();
        }
        Ok(None)
    }

    /// The oldest frame still in flight, steadied; `None` once all are out. For the end of the
    /// stream.
    pub fn next_left(&mut self) -> Result<Option<Steadied<T>>> {
        let Some(frame) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        // A preparer answers every frame it takes, unless it panicked on the way.
        let prepared = frame.prepared.recv().map_err(|_| MotionError::Stopped)??;
        let (image, kind) = self.steadier.apply(prepared)?;
        Ok(Some(Steadied {
            tag: frame.tag,
            original: frame.original,
            image,
            frame: kind,
        }))
    }
}

/// What one prepared frame in flight holds per pixel: the original and styled frame (3 + 3),
/// the flow's maps and trust (4 + 4 + 4), where it lands inside the frame (1), the styled frame as
/// float RGB and its coarse band (12 + 12).
const BYTES_PER_PIXEL_IN_FLIGHT: usize = 43;

/// Frames in flight at most, all of them together: 1 GiB keeps a 16-core node's 8 threads busy at
/// 1080p (12 frames in flight) and holds a 4K stream to 3 frames instead of ~10 GB.
const IN_FLIGHT_BUDGET_BYTES: usize = 1 << 30;

/// How many frames a stream keeps in flight before handing the oldest on: two per thread, so
/// every thread has a frame to prepare while the oldest is carried, within the memory budget.
fn look_ahead(threads: usize, frame: &RgbImage) -> usize {
    let per_frame =
        (frame.width as usize * frame.height as usize * BYTES_PER_PIXEL_IN_FLIGHT).max(1);
    (IN_FLIGHT_BUDGET_BYTES / per_frame).clamp(1, 2 * threads)
}

/// Threads for steadying a stream: one on machines of up to four cores (the network and x264
/// already keep them busy, so more would only wait), half the cores beyond, where a GPU styles
/// and the CPU is the steadier's, up to [`MAX_STEADYING_THREADS`].
pub fn steadying_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 4 {
        1
    } else {
        (cores / 2).min(MAX_STEADYING_THREADS)
    }
}

/// Beyond this many, the in-order carrying is the bound anyway. It also keeps the look-ahead (at
/// most two frames per thread) well inside what a cloud restitcher fetches ahead of the frame it
/// writes.
const MAX_STEADYING_THREADS: usize = 16;

/// Background threads, each with its own [`MotionAnalyser`], taking frames from one queue.
struct Preparers {
    threads: usize,
    queue: Option<mpsc::Sender<Preparing>>,
    handles: Vec<JoinHandle<()>>,
}

struct Preparing {
    previous: Option<Arc<RgbImage>>,
    original: Arc<RgbImage>,
    styled: RgbImage,
    reply: mpsc::Sender<Result<Prepared>>,
}

impl Preparers {
    fn start(threads: usize) -> Self {
        let (queue, jobs) = mpsc::channel::<Preparing>();
        let jobs = Arc::new(Mutex::new(jobs));
        let handles = (0..threads)
            .map(|_| {
                let jobs = jobs.clone();
                std::thread::spawn(move || {
                    let mut analyser = MotionAnalyser::default();
                    loop {
                        // The lock is held only while waiting for a frame, not while preparing it.
                        let job = jobs.lock().expect("a preparer panicked").recv();
                        let Ok(job) = job else { return };
                        let previous = job.previous.as_deref();
                        let prepared = analyser.prepare(previous, &job.original, job.styled);
                        let _ = job.reply.send(prepared); // the stream may have been dropped
                    }
                })
            })
            .collect();
        Preparers {
            threads,
            queue: Some(queue),
            handles,
        }
    }

    fn prepare(
        &self,
        previous: Option<Arc<RgbImage>>,
        original: Arc<RgbImage>,
        styled: RgbImage,
    ) -> mpsc::Receiver<Result<Prepared>> {
        let (reply, prepared) = mpsc::channel();
        let job = Preparing {
            previous,
            original,
            styled,
            reply,
        };
        self.queue
            .as_ref()
            .expect("open until dropped")
            .send(job)
            .expect("the preparers run until the stream is dropped");
        prepared
    }
}

impl Drop for Preparers {
    fn drop(&mut self) {
        self.queue = None; // the threads see the queue close and end
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pattern as textured;

    /// A pan with a cut in the middle, styled differently every frame.
    fn clip() -> Vec<(RgbImage, RgbImage)> {
        (0..12u32)
            .map(|t| {
                let original = if t < 6 {
                    textured(96, 64, t * 2)
                } else {
                    RgbImage::solid(96, 64, [240, 30 + t as u8 * 4, 90])
                };
                (original, textured(96, 64, t * 2 + 5 * (t % 3)))
            })
            .collect()
    }

    #[test]
    fn the_look_ahead_keeps_threads_busy_within_its_memory_budget() {
        let frame = |w, h| RgbImage::solid(w, h, [0, 0, 0]);
        assert_eq!(look_ahead(8, &frame(720, 720)), 16);
        assert_eq!(look_ahead(16, &frame(1920, 1080)), 12);
        assert_eq!(look_ahead(16, &frame(3840, 2160)), 3);
        assert_eq!(look_ahead(1, &frame(64, 48)), 2);
        assert_eq!(look_ahead(16, &frame(16384, 16384)), 1);
    }

    #[test]
    fn frames_prepared_ahead_and_carried_in_bands_come_out_as_from_one_steadier() {
        let mut one = Steadier::new(0.95);
        let expected: Vec<(RgbImage, SteadyFrame)> = clip()
            .iter()
            .map(|(original, styled)| one.process(original, styled).unwrap())
            .collect();
        for threads in [1, 3] {
            let mut stream = SteadyStream::with_threads(0.95, threads).unwrap();
            let mut got = Vec::new();
            for (n, (original, styled)) in clip().into_iter().enumerate() {
                got.extend(stream.push(n, original, styled).unwrap());
            }
            while let Some(frame) = stream.next_left().unwrap() {
                got.push(frame);
            }
            assert_eq!(got.len(), expected.len());
            for (n, (frame, (image, kind))) in got.iter().zip(&expected).enumerate() {
                assert_eq!(frame.tag, n, "in order");
                assert_eq!(&frame.image, image, "frame {n} with {threads} threads");
                assert_eq!(frame.frame, *kind, "frame {n} with {threads} threads");
            }
            assert!(
                matches!(got[6].frame, SteadyFrame::Fresh),
                "the cut starts afresh"
            );
            assert!(matches!(got[3].frame, SteadyFrame::Carried { .. }));
        }
    }
}
