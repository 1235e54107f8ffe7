//! Build script: rpath to LibTorch so the binaries run without LD_LIBRARY_PATH, and `stylize` linked so that it needs no LibTorch.
fn main() {
    // Without this, any change in the package (tests, scripts, README) reruns the script and relinks.
    println!("cargo:rerun-if-changed=build.rs");
    // `stylize` runs no network, and links without LibTorch when none of its live code calls it.
    // The linker takes whole code units, though, and LibTorch's C wrapper comes along with them:
    // exported, the wrapper's copies of LibTorch's C++ templates would be kept for LibTorch to
    // use, and LibTorch loaded for them; hidden, they go with the rest of the dead code. (Not for
    // `stylize-torch`: LibTorch's singletons must stay one copy per process.)
    println!("cargo:rustc-link-arg-bin=stylize=-Wl,--exclude-libs,ALL");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // A CUDA LibTorch: nothing calls libtorch_cuda directly, so `--as-needed` drops it and
        // LibTorch quietly runs on the CPU only. `stylize-torch` names it again, unconditionally:
        // a link argument lands after the libraries, so a bare `--no-as-needed` would come too late.
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!(
                "cargo:rustc-link-arg-bin=stylize-torch=-Wl,--push-state,--no-as-needed,-ltorch_cuda,--pop-state"
            );
        }
    }
}
