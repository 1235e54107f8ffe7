//! stylize-media: FFmpeg edges — probe, decode to RGB frames, encode H.264, mux with the audio copied.
