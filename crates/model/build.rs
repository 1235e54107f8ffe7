//! Build script: rpath to LibTorch, and the converted weights embedded in the library.
use std::path::PathBuf;

fn main() {
    // torch-sys sets no rpath; without one every binary needs LD_LIBRARY_PATH.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let weights = std::env::var_os("STYLIZE_WEIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../weights"));
    println!("cargo:rerun-if-env-changed=STYLIZE_WEIGHTS_DIR");
    for name in [
        "multistyle26.safetensors",
        "arbitrary_predict.safetensors",
        "arbitrary_transform.safetensors",
    ] {
        let path = weights.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.is_file() {
            panic!(
                "missing {}: run scripts/setup.sh (it converts the pinned ONNX weights), or set STYLIZE_WEIGHTS_DIR",
                path.display()
            );
        }
    }
    println!(
        "cargo:rustc-env=STYLIZE_WEIGHTS_DIR={}",
        weights.canonicalize().unwrap().display()
    );
}
