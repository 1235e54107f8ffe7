//! Engine round trips on small frames with the real embedded weights: sizes, strength, colour
//! preservation, size cap, and the error cases.
use stylize_model::{
    DeviceChoice, Engine, EngineOptions, ModelError, Precision, RgbImage, StyleParams, StyleSource,
};

fn engine(precision: Precision) -> Engine {
    Engine::new(&EngineOptions {
        device: DeviceChoice::Cpu,
        precision,
        threads: None,
    })
    .expect("engine")
}

/// A picture with gradients, edges and mid-range colours (so clamping does not hide chroma).
fn picture(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let r = 60.0 + 120.0 * (x as f32 / w as f32);
            let g = 70.0 + 100.0 * (y as f32 / h as f32);
            let b = if (x / 4 + y / 3 + seed).is_multiple_of(2) {
                90.0
            } else {
                160.0
            };
            data.extend([r as u8, g as u8, b as u8]);
        }
    }
    RgbImage::new(w, h, data)
}

/// A smooth, photo-like picture (no hard edges): overlapping waves of colour.
fn smooth_picture(w: u32, h: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let r = 128.0 + 80.0 * (6.0 * fx + 2.0 * fy).sin();
            let g = 120.0 + 70.0 * (5.0 * fy - 3.0 * fx).cos();
            let b = 110.0 + 60.0 * (9.0 * fx * fy).sin();
            data.extend([r as u8, g as u8, b as u8]);
        }
    }
    RgbImage::new(w, h, data)
}

fn mean_abs(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.data.len(), b.data.len());
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum::<f64>()
        / a.data.len() as f64
}

/// Mean absolute Cb/Cr difference (BT.601, in 8-bit levels).
fn chroma_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let cbcr = |p: &[u8]| {
        let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
        (
            -0.168736 * r - 0.331264 * g + 0.5 * b,
            0.5 * r - 0.418688 * g - 0.081312 * b,
        )
    };
    let mut sum = 0.0;
    for (pa, pb) in a.data.chunks(3).zip(b.data.chunks(3)) {
        let (ca, cb) = (cbcr(pa), cbcr(pb));
        sum += (ca.0 - cb.0).abs() + (ca.1 - cb.1).abs();
    }
    sum / (a.data.len() / 3) as f64 / 2.0
}

fn presets(list: &[(usize, f32)]) -> StyleSource {
    StyleSource::Presets(list.to_vec())
}

/// Short name of a style source for messages (the Debug form prints every pixel).
fn label(s: &StyleSource) -> String {
    match s {
        StyleSource::Presets(l) => format!("presets {l:?}"),
        StyleSource::Image(i) => format!("image {}x{}", i.width, i.height),
    }
}

#[test]
fn odd_sizes_come_back_the_same_size_and_styled() {
    let e = engine(Precision::F32);
    let frames = vec![picture(37, 23, 0), picture(37, 23, 1), picture(20, 31, 2)];
    for source in [
        presets(&[(7, 1.0)]),
        presets(&[(3, 0.5), (12, 0.5)]),
        StyleSource::Image(picture(64, 48, 5)),
    ] {
        let style = e
            .prepare(&source, &StyleParams::default(), Some(&frames[0]))
            .unwrap();
        let out = e.stylize(&style, &frames).unwrap();
        assert_eq!(out.len(), frames.len());
        for (i, o) in frames.iter().zip(&out) {
            assert_eq!(
                (o.width, o.height, o.data.len()),
                (i.width, i.height, i.data.len())
            );
            let d = mean_abs(i, o);
            assert!(
                d > 8.0,
                "{}: output too close to the input ({d:.1} levels)",
                label(&source)
            );
        }
    }
}

#[test]
fn strength_zero_presets_returns_the_input() {
    let e = engine(Precision::F32);
    let frame = picture(33, 17, 0);
    let params = StyleParams {
        strength: 0.0,
        ..StyleParams::default()
    };
    let style = e.prepare(&presets(&[(1, 1.0)]), &params, None).unwrap();
    let out = e.stylize(&style, std::slice::from_ref(&frame)).unwrap();
    let worst = frame
        .data
        .iter()
        .zip(&out[0].data)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "strength 0 moved a value by {worst}");

    let half = e
        .prepare(
            &presets(&[(1, 1.0)]),
            &StyleParams {
                strength: 0.5,
                ..params
            },
            None,
        )
        .unwrap();
    let full = e
        .prepare(&presets(&[(1, 1.0)]), &StyleParams::default(), None)
        .unwrap();
    let (h, f) = (
        e.stylize(&half, std::slice::from_ref(&frame)).unwrap(),
        e.stylize(&full, std::slice::from_ref(&frame)).unwrap(),
    );
    let (dh, df) = (mean_abs(&frame, &h[0]), mean_abs(&frame, &f[0]));
    assert!(
        (dh - df / 2.0).abs() < 1.0,
        "strength 0.5 should be halfway: {dh:.2} vs {df:.2}"
    );
}

/// Deep frames (16-bit samples) reach the network as they are and come back deep: at strength 0
/// the output is the input to the last of 65536 levels, and styled, a deep frame and a mix of deep
/// and 8-bit frames come back each in its own depth.
#[test]
fn deep_frames_go_through_with_their_16_bits() {
    let e = engine(Precision::F32);
    let (w, h) = (33, 17);
    // Samples between the 8-bit levels, which an 8-bit step would round away.
    let samples = (0..w * h * 3).map(|i| (i * 4099 % 65536) as u16).collect();
    let deep = RgbImage::from_deep(w, h, samples);
    let identity = StyleParams {
        strength: 0.0,
        ..StyleParams::default()
    };
    let style = e.prepare(&presets(&[(1, 1.0)]), &identity, None).unwrap();
    let out = e.stylize(&style, std::slice::from_ref(&deep)).unwrap();
    let (given, back) = (deep.deep.as_ref().unwrap(), out[0].deep.as_ref().unwrap());
    let worst = given
        .iter()
        .zip(back)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 1, "strength 0 moved a 16-bit sample by {worst}");

    let full = e
        .prepare(&presets(&[(1, 1.0)]), &StyleParams::default(), None)
        .unwrap();
    let shallow = RgbImage::new(w, h, deep.data.clone());
    let out = e.stylize(&full, &[deep.clone(), shallow.clone()]).unwrap();
    assert!(out[0].is_deep() && !out[1].is_deep());
    assert!(out[0].check().is_ok());
    let d = mean_abs(&out[0], &out[1]);
    assert!(
        d < 3.0,
        "deep and rounded inputs style alike ({d:.2} levels)"
    );
    assert!(mean_abs(&deep, &out[0]) > 8.0, "the deep frame is styled");
}

#[test]
fn image_style_strength_interpolates_the_style_vector() {
    let e = engine(Precision::F32);
    let content = picture(40, 28, 0);
    let source = StyleSource::Image(picture(80, 60, 3));
    let weak = StyleParams {
        strength: 0.3,
        ..StyleParams::default()
    };
    match e.prepare(&source, &weak, None) {
        Err(ModelError::BadStyle { .. }) => {}
        other => panic!("strength < 1 without a content sample must be BadStyle, got {other:?}"),
    }
    let full = e
        .prepare(&source, &StyleParams::default(), Some(&content))
        .unwrap();
    let weak = e.prepare(&source, &weak, Some(&content)).unwrap();
    assert!(full.is_image_style());
    let (vf, vw) = (full.values(), weak.values());
    assert_eq!(vf.len(), 100);
    assert!(
        vf.iter().zip(&vw).any(|(a, b)| (a - b).abs() > 1e-3),
        "strength did not change the vector"
    );
}

#[test]
fn preserve_colors_keeps_the_chroma() {
    let e = engine(Precision::F32);
    let frame = picture(48, 36, 1);
    let plain = e
        .prepare(&presets(&[(10, 1.0)]), &StyleParams::default(), None)
        .unwrap();
    let keep = StyleParams {
        preserve_colors: true,
        ..StyleParams::default()
    };
    let kept = e.prepare(&presets(&[(10, 1.0)]), &keep, None).unwrap();
    let a = e.stylize(&plain, std::slice::from_ref(&frame)).unwrap();
    let b = e.stylize(&kept, std::slice::from_ref(&frame)).unwrap();
    let (free, held) = (chroma_diff(&frame, &a[0]), chroma_diff(&frame, &b[0]));
    eprintln!("mean |ΔCbCr| vs input: styled {free:.2} levels, preserve_colors {held:.2} levels");
    assert!(
        held < 1.5,
        "preserve_colors changed chroma by {held:.2} levels"
    );
    assert!(
        free > 3.0 * held,
        "the style should change chroma much more ({free:.2})"
    );
    assert!(
        mean_abs(&frame, &b[0]) > 4.0,
        "preserve_colors must still restyle the luma"
    );
}

#[test]
fn max_size_runs_smaller_and_returns_the_original_size() {
    let e = engine(Precision::F32);
    let frame = picture(101, 57, 2);
    let capped = StyleParams {
        max_size: Some(40),
        ..StyleParams::default()
    };
    for source in [presets(&[(4, 1.0)]), StyleSource::Image(picture(50, 50, 4))] {
        let full = e.prepare(&source, &StyleParams::default(), None).unwrap();
        let small = e.prepare(&source, &capped, None).unwrap();
        let a = e.stylize(&full, std::slice::from_ref(&frame)).unwrap();
        let b = e.stylize(&small, std::slice::from_ref(&frame)).unwrap();
        assert_eq!((b[0].width, b[0].height), (101, 57));
        assert!(
            mean_abs(&a[0], &b[0]) > 0.5,
            "the size cap should change the rendering"
        );
    }
}

#[test]
fn bf16_engine_matches_f32_closely() {
    let (e32, e16) = (engine(Precision::F32), engine(Precision::Bf16));
    assert!(e16.describe().contains("bf16"), "{}", e16.describe());
    let frame = smooth_picture(64, 48);
    for source in [
        presets(&[(2, 1.0)]),
        presets(&[(20, 1.0)]),
        StyleSource::Image(picture(64, 64, 1)),
    ] {
        let s32 = e32.prepare(&source, &StyleParams::default(), None).unwrap();
        let s16 = e16.prepare(&source, &StyleParams::default(), None).unwrap();
        let a = e32.stylize(&s32, std::slice::from_ref(&frame)).unwrap();
        let b = e16.stylize(&s16, std::slice::from_ref(&frame)).unwrap();
        let d = mean_abs(&a[0], &b[0]);
        eprintln!("{}: bf16 vs f32 mean abs {d:.2} levels", label(&source));
        assert!(d < 3.0, "bf16 output drifted {d:.2} levels");
    }
}

#[test]
fn errors_are_typed() {
    let e = engine(Precision::F32);
    let ok = StyleParams::default();
    assert!(matches!(
        e.prepare(&presets(&[(26, 1.0)]), &ok, None),
        Err(ModelError::BadPreset { index: 26 })
    ));
    assert!(matches!(
        e.prepare(&presets(&[]), &ok, None),
        Err(ModelError::BadStyle { .. })
    ));
    assert!(matches!(
        e.prepare(&presets(&[(0, -1.0)]), &ok, None),
        Err(ModelError::BadStyle { .. })
    ));
    assert!(matches!(
        e.prepare(&presets(&[(0, 0.0)]), &ok, None),
        Err(ModelError::BadStyle { .. })
    ));
    let strong = StyleParams {
        strength: 1.5,
        ..StyleParams::default()
    };
    assert!(matches!(
        e.prepare(&presets(&[(0, 1.0)]), &strong, None),
        Err(ModelError::BadParams { .. })
    ));
    let empty = RgbImage::new(0, 0, vec![]);
    assert!(matches!(
        e.prepare(&StyleSource::Image(empty), &ok, None),
        Err(ModelError::BadStyle { .. })
    ));

    let style = e.prepare(&presets(&[(0, 1.0)]), &ok, None).unwrap();
    let short = RgbImage::new(4, 4, vec![0; 10]);
    assert!(matches!(
        e.stylize(&style, &[picture(8, 8, 0), short]),
        Err(ModelError::BadFrame { index: 1, .. })
    ));
    assert!(e.stylize(&style, &[]).unwrap().is_empty());
}

#[test]
fn cuda_without_cuda_is_an_error() {
    if tch::Cuda::is_available() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let opts = EngineOptions {
        device: DeviceChoice::Cuda,
        precision: Precision::Auto,
        threads: None,
    };
    assert!(matches!(
        Engine::new(&opts),
        Err(ModelError::CudaUnavailable)
    ));
    let auto = Engine::new(&EngineOptions {
        device: DeviceChoice::Auto,
        precision: Precision::Auto,
        threads: Some(1),
    })
    .unwrap();
    assert!(auto.describe().starts_with("cpu"), "{}", auto.describe());
    assert_eq!(auto.preferred_batch(), 1);
    assert_eq!(Engine::preset_count(), 26);
}

/// A style rebuilt from its values (as a cloud worker does) styles frames exactly like the original.
#[test]
fn prepare_from_values_reproduces_the_style() {
    let engine = Engine::new(&EngineOptions {
        device: DeviceChoice::Cpu,
        precision: Precision::F32,
        threads: None,
    })
    .unwrap();
    let picture = RgbImage::new(
        64,
        48,
        (0..64 * 48 * 3).map(|i| ((i * 37) % 251) as u8).collect(),
    );
    let frame = RgbImage::new(
        40,
        30,
        (0..40 * 30 * 3).map(|i| ((i * 11) % 253) as u8).collect(),
    );
    let params = StyleParams {
        strength: 0.7,
        preserve_colors: false,
        max_size: None,
    };
    for source in [
        StyleSource::Image(picture),
        StyleSource::Presets(vec![(2, 0.25), (9, 0.75)]),
    ] {
        let original = engine.prepare(&source, &params, Some(&frame)).unwrap();
        let rebuilt = engine
            .prepare_from_values(original.is_image_style(), &original.values(), &params)
            .unwrap();
        let a = engine
            .stylize(&original, std::slice::from_ref(&frame))
            .unwrap();
        let b = engine
            .stylize(&rebuilt, std::slice::from_ref(&frame))
            .unwrap();
        assert_eq!(
            a[0].data, b[0].data,
            "rebuilt style must give identical frames"
        );
    }
    // A coordinator knows a presets style's values without loading the network.
    let list = [(2, 0.25), (9, 0.75), (2, 0.5)];
    let prepared = engine
        .prepare(&StyleSource::Presets(list.to_vec()), &params, None)
        .unwrap();
    assert_eq!(
        stylize_model::preset_values(&list).unwrap().to_vec(),
        prepared.values()
    );
    assert!(matches!(
        stylize_model::preset_values(&[(26, 1.0)]),
        Err(ModelError::BadPreset { index: 26 })
    ));
    assert!(engine
        .prepare_from_values(true, &[0.0; 7], &params)
        .is_err());
    assert!(
        engine
            .prepare_from_values(false, &[0.0; 26], &params)
            .is_err(),
        "all-zero preset weights"
    );
}
