//! stylize-core: the run domain — output planning, styles, the local pipeline, side-by-side videos, sheets, and the cloud coordinator and worker engines.
//!
//! Everything here takes plain option structs (no command-line parsing) and
//! reports through small traits ([`pipeline::FrameProgress`],
//! [`cloud::coordinator::Reporter`], [`cloud::worker::Log`]), so the `stylize` binary
//! only parses arguments, converts them into these options and presents what
//! comes back. Layers below (media, model, cloud protocol) never see this crate.
pub mod cancel;
pub mod cloud;
pub mod compare;
pub mod files;
pub mod frames;
pub mod inputs;
pub mod look;
pub mod measure;
pub mod optimize;
pub mod output;
pub mod pipeline;
pub mod sheet;
pub mod style;
pub mod units;

pub use stylize_frame::RgbImage;
