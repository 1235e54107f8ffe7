//! Tests of the arbitrary-style modules: parity with onnxruntime fixtures, any size, style sensitivity, bf16, timing.
//!
//! Fixtures: tests/fixtures/arbitrary.safetensors, written by scripts/importer/make_fixtures_arbitrary.py.
//!
//! Tolerances, and why:
//! - against the *float* graphs (the ONNX with weights dequantized and activation fake-quant removed, i.e.
//!   exactly the network these modules implement): differences are fp32 rounding only, 1e-4 bounds them;
//! - against the shipped *int8* graphs: the int8 rounding of every activation shows. For the predictor,
//!   onnxruntime's QDQ reference semantics (optimisations off) sits ~4% (relative L2) from the float network,
//!   and its optimised int8 kernels (what the peer runs) ~17%; for the transformer at 384×384 the int8 graph
//!   is ~0.028 mean absolute from the float one (the fixture records the number), invisible in a picture.
use std::collections::HashMap;
use std::time::Instant;

use stylize_model::arbitrary::{style_image_input, StylePredictor, StyleTransformer};
use tch::{nn, Device, Kind, Tensor};

fn weights(file: &str) -> String {
    format!("{}/{}", env!("STYLIZE_WEIGHTS_DIR"), file)
}

fn fixtures() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/arbitrary.safetensors"
    );
    Tensor::read_safetensors(path)
        .expect("read fixtures")
        .into_iter()
        .collect()
}

fn predictor() -> (nn::VarStore, StylePredictor) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let m = StylePredictor::new(&vs.root());
    vs.load(weights("arbitrary_predict.safetensors"))
        .expect("load predictor weights");
    (vs, m)
}

fn transformer() -> (nn::VarStore, StyleTransformer) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let m = StyleTransformer::new(&vs.root());
    vs.load(weights("arbitrary_transform.safetensors"))
        .expect("load transformer weights");
    (vs, m)
}

/// [N?,H,W,3] uint8 → [N,3,H·f,W·f] float: nearest-neighbour upscale then /255, as the fixture script does.
fn upscale_u8(u8_hwc: &Tensor, factor: i64) -> Tensor {
    let x = if u8_hwc.dim() == 3 {
        u8_hwc.unsqueeze(0)
    } else {
        u8_hwc.shallow_clone()
    };
    let x = x.permute([0, 3, 1, 2]).to_kind(Kind::Float);
    let (h, w) = (x.size()[2], x.size()[3]);
    x.upsample_nearest2d([h * factor, w * factor], factor as f64, factor as f64) / 255.0
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn mean_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().mean(Kind::Float).double_value(&[])
}

fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).norm().double_value(&[]) / b.norm().double_value(&[])
}

/// An NCHW-shaped view with channels-last (NHWC) strides, the layout the engine uses on CPU.
fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[test]
fn predictor_matches_float_and_int8_graphs() {
    let fx = fixtures();
    let (_vs, net) = predictor();
    let x = upscale_u8(&fx["predict.style_u8"], 4);
    let out = tch::no_grad(|| net.forward(&x));
    assert_eq!(out.size(), [2, 100]);
    let d_float = max_abs(&out, &fx["predict.float"]);
    let d_ref = rel_l2(&out, &fx["predict.int8_ref"]);
    let d_int8 = rel_l2(&out, &fx["predict.int8"]);
    eprintln!("predictor: max abs vs float graph {d_float:.2e}; rel L2 vs int8 QDQ reference {d_ref:.4}, vs int8 onnxruntime {d_int8:.4}");
    assert!(d_float < 1e-4, "vs float graph: {d_float}");
    assert!(d_ref < 0.06, "vs int8 QDQ reference: {d_ref}");
    assert!(d_int8 < 0.25, "vs int8 onnxruntime: {d_int8}");
}

#[test]
fn transformer_matches_float_graph() {
    let fx = fixtures();
    let (_vs, net) = transformer();
    let content = &fx["transform.content"];
    let style = &fx["transform.style"];
    let expected = &fx["transform.float"];
    tch::no_grad(|| {
        // One style at a time (the shared-style path) ...
        for i in 0..2 {
            let out = net.forward(content, &style.narrow(0, i, 1));
            let d = max_abs(&out, &expected.narrow(0, i, 1));
            eprintln!("transformer style {i}: max abs vs float graph {d:.2e}");
            assert!(d < 1e-4, "style {i}: {d}");
        }
        // ... and a batch with one style per frame (the per-sample path).
        let out = net.forward(&content.expand([2, -1, -1, -1], false), style);
        let d = max_abs(&out, expected);
        eprintln!("transformer batch of 2 styles: max abs vs float graph {d:.2e}");
        assert!(d < 1e-4, "batched: {d}");
    });
}

#[test]
fn any_size_comes_back_the_same_size() {
    let fx = fixtures();
    let (_vs, net) = transformer();
    let style = fx["transform.style"].narrow(0, 0, 1);
    tch::no_grad(|| {
        // 37×23 against the float graph run on the reflect-padded 40×24 and cropped.
        let out = net.forward(&fx["transform.odd_content"], &style);
        assert_eq!(out.size(), [1, 3, 37, 23]);
        let d = max_abs(&out, &fx["transform.odd_float"]);
        eprintln!("transformer 37x23: max abs vs float graph {d:.2e}");
        assert!(d < 1e-4, "37x23: {d}");
        for (h, w) in [(1, 1), (3, 5), (9, 14), (64, 33)] {
            let x = Tensor::rand([1, 3, h, w], (Kind::Float, Device::Cpu));
            let out = net.forward(&x, &style);
            assert_eq!(out.size(), [1, 3, h, w]);
            let (lo, hi) = (out.min().double_value(&[]), out.max().double_value(&[]));
            assert!(
                (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
                "{h}x{w}: range {lo}..{hi}"
            );
        }
    });
}

#[test]
fn transformer_near_shipped_int8_graph_at_384() {
    let fx = fixtures();
    let (_vs, net) = transformer();
    let content = upscale_u8(&fx["transform384.content_u8"], 3);
    let out = tch::no_grad(|| net.forward(&content, &fx["transform384.style"]));
    assert_eq!(out.size(), [1, 3, 384, 384]);
    let pooled = out.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
    let d = mean_abs(&pooled, &fx["transform384.int8_pool4"]);
    let recorded = fx["transform384.int8_vs_float_mean_abs"].double_value(&[0]);
    eprintln!("transformer 384: mean abs vs int8 graph (4x4 block means) {d:.4}; int8 vs float graph at full size {recorded:.4}");
    // Block means average away part of the int8 noise, so this sits below the full-resolution figure.
    assert!(d < 0.03, "vs int8 graph: {d}");
}

#[test]
fn different_styles_give_different_pictures() {
    let fx = fixtures();
    let (_vs, net) = transformer();
    let out = tch::no_grad(|| {
        net.forward(
            &fx["transform.content"].expand([2, -1, -1, -1], false),
            &fx["transform.style"],
        )
    });
    let d = mean_abs(&out.narrow(0, 0, 1), &out.narrow(0, 1, 1));
    eprintln!("two styles: mean abs difference {d:.3}");
    assert!(d > 0.05, "styles too alike: {d}");
}

#[test]
fn bf16_channels_last_close_to_fp32() {
    let fx = fixtures();
    let (_vs, net32) = transformer();
    let (mut vs16, net16) = transformer();
    vs16.bfloat16();
    let content = upscale_u8(&fx["transform384.content_u8"], 1);
    let style = fx["transform.style"].narrow(0, 1, 1);
    let (y32, y16) = tch::no_grad(|| {
        let y32 = net32.forward(&content, &style);
        let y16 = net16.forward(
            &channels_last(&content.to_kind(Kind::BFloat16)),
            &style.to_kind(Kind::BFloat16),
        );
        (y32, y16)
    });
    assert_eq!(y16.kind(), Kind::BFloat16);
    let y16 = y16.to_kind(Kind::Float);
    let (mean, max) = (mean_abs(&y16, &y32), max_abs(&y16, &y32));
    eprintln!("bf16 channels-last vs fp32 (128x128): mean abs {mean:.4}, max abs {max:.3}");
    assert!(
        mean < 0.01 && max < 0.15,
        "bf16 drift: mean {mean}, max {max}"
    );

    let (mut vsp, pred16) = predictor();
    let (_vsq, pred32) = predictor();
    vsp.bfloat16();
    let x = upscale_u8(&fx["predict.style_u8"], 4);
    let (s32, s16) = tch::no_grad(|| {
        (
            pred32.forward(&x),
            pred16.forward(&channels_last(&x.to_kind(Kind::BFloat16))),
        )
    });
    let d = rel_l2(&s16.to_kind(Kind::Float), &s32);
    eprintln!("predictor bf16 channels-last vs fp32: rel L2 {d:.4}");
    // The predictor runs once per style, so the engine can as well run it in fp32.
    assert!(d < 0.08, "predictor bf16 drift: {d}");
}

#[test]
fn style_image_input_crops_the_centre_square() {
    // A 300×400 image: the centre 300×300 square is mid-grey, the 50-pixel side strips black and white.
    let img = Tensor::full([300, 400, 3], 128, (Kind::Uint8, Device::Cpu));
    let _ = img.narrow(1, 0, 50).fill_(0);
    let _ = img.narrow(1, 350, 50).fill_(255);
    let x = style_image_input(&img);
    assert_eq!(x.size(), [1, 3, 256, 256]);
    assert_eq!(x.kind(), Kind::Float);
    let d = (x - 128.0 / 255.0).abs().max().double_value(&[]);
    assert!(d < 1e-5, "crop leaked the side strips: {d}");
    let small = Tensor::full([100, 80, 3], 7, (Kind::Uint8, Device::Cpu));
    assert_eq!(style_image_input(&small).size(), [1, 3, 256, 256]);
}

/// `cargo test --release -p stylize-model --test arbitrary_parity -- --ignored --nocapture timing`
#[test]
#[ignore]
fn timing_720() {
    let (_vs32, net32) = transformer();
    let (mut vs16, net16) = transformer();
    vs16.bfloat16();
    let style = Tensor::randn([1, 100], (Kind::Float, Device::Cpu));
    let x = Tensor::rand([1, 3, 720, 720], (Kind::Float, Device::Cpu));
    let x_cl = channels_last(&x);
    let x16 = channels_last(&x.to_kind(Kind::BFloat16));
    let best_of = |runs: usize, f: &dyn Fn() -> Tensor| {
        let _ = f();
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let _ = f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    tch::no_grad(|| {
        let nchw = best_of(5, &|| net32.forward(&x, &style));
        let cl = best_of(5, &|| net32.forward(&x_cl, &style));
        let bf16 = best_of(2, &|| net16.forward(&x16, &style));
        eprintln!(
            "transformer 720x720, {} threads, best of runs: fp32 NCHW {nchw:.3} s/frame, fp32 channels-last {cl:.3}, bf16 channels-last {bf16:.3}",
            tch::get_num_threads()
        );
    });
}
