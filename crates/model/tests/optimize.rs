//! `--method optimize` on small frames with the real VGG19 and style network: the loss and the Gram loss fall at every iteration, and the result is closer to the style picture than the fast network's at a like content distance.
use std::path::Path;

use stylize_model::optimize::{optimize, OptimizeParams, StyleGoal};
use stylize_model::vgg::{content_distance, style_distance, Vgg19};
use stylize_model::{
    DeviceChoice, Engine, EngineOptions, Precision, RgbImage, StyleParams, StyleSource,
};

fn vgg() -> Vgg19 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights/vgg19_q.safetensors");
    Vgg19::load(&path).expect("VGG19 converted by scripts/setup.sh")
}

/// A smooth scene: gradients and a soft disc.
fn scene(w: u32, h: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let disc = (((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() < 0.25) as u8 as f32;
            data.extend_from_slice(&[
                (40.0 + 150.0 * fx + 50.0 * disc) as u8,
                (90.0 + 100.0 * fy) as u8,
                (160.0 - 80.0 * fx + 60.0 * disc) as u8,
            ]);
        }
    }
    RgbImage::new(w, h, data)
}

/// A style of bold diagonal strokes in two colours.
fn strokes(w: u32, h: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let on = ((x + 2 * y) / 5) % 2 == 0;
            data.extend_from_slice(if on { &[230, 180, 30] } else { &[20, 40, 120] });
        }
    }
    RgbImage::new(w, h, data)
}

#[test]
fn the_loss_falls_every_iteration_and_ends_closer_to_the_style_than_the_network() {
    let vgg = vgg();
    let (content, style) = (scene(64, 48), strokes(64, 48));
    let engine = Engine::new(&EngineOptions {
        device: DeviceChoice::Cpu,
        precision: Precision::F32,
        threads: None,
    })
    .unwrap();
    let prepared = engine
        .prepare(
            &StyleSource::Image(style.clone()),
            &StyleParams::default(),
            None,
        )
        .unwrap();
    let fast = engine
        .stylize(&prepared, std::slice::from_ref(&content))
        .unwrap()
        .remove(0);
    let goal = StyleGoal::new(&vgg, &style).unwrap();
    let params = OptimizeParams {
        iterations: 12,
        ..OptimizeParams::default()
    };
    let mut heard = 0;
    let result = optimize(&vgg, &goal, &content, &fast, None, &params, |_, _| {
        heard += 1
    })
    .unwrap();
    assert_eq!(heard, result.curve.len());
    assert_eq!(
        result.curve.len(),
        params.iterations + 1,
        "every iteration made progress"
    );
    for pair in result.curve.windows(2) {
        assert!(
            pair[1].total <= pair[0].total,
            "the loss rose: {:?}",
            result.curve
        );
        // Here the style term dominates: its loss falls by 0.04 or more at every step.
        assert!(
            pair[1].style < pair[0].style,
            "the Gram loss rose: {:?}",
            result.curve
        );
    }
    let (first, last) = (result.curve[0], *result.curve.last().unwrap());
    assert!(
        last.style < first.style * 0.8,
        "Gram loss {first:?} → {last:?}"
    );

    let features = |image: &RgbImage| vgg.features(image).unwrap();
    let (style_f, content_f) = (features(&style), features(&content));
    let distances = |image: &RgbImage| {
        let f = features(image);
        (
            style_distance(&f, &style_f),
            content_distance(&f, &content_f),
        )
    };
    let (fast_style, fast_content) = distances(&fast);
    let (ours_style, ours_content) = distances(&result.image);
    assert!(
        ours_style < fast_style * 0.8,
        "style distance: optimised {ours_style:.3} vs network {fast_style:.3}"
    );
    assert!(
        ours_content < fast_content * 1.5 + 0.05,
        "content distance: optimised {ours_content:.3} vs network {fast_content:.3}"
    );
}
