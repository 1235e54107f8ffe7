//! stylize-model: the style networks as native tch modules, their embedded weights, device and precision choice.
pub mod arbitrary;
pub mod multistyle;
