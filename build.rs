//! Build script: rpath to LibTorch so `stylize` runs without LD_LIBRARY_PATH.
fn main() {
    // Without this, any change in the package (tests, scripts, README) reruns the script and relinks.
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
