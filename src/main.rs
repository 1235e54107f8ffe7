//! The `stylize` binary: runs the commands that need no LibTorch itself, and starts `stylize-torch` (beside it) for every command that runs a network.
use clap::Parser;
use stylize_cli::Cli;

fn main() {
    let cli = Cli::parse();
    if !stylize_cli::runs_without_torch(&cli) {
        hand_over_to_torch();
    }
    stylize_cli::leave(stylize_cli::run_without_torch(cli))
}

/// The binary that runs networks, beside this one.
const TORCH_BINARY: &str = "stylize-torch";

/// Replaces this process with `stylize-torch` and the same arguments (with OpenMP's passive wait,
/// set here where it costs no second start); returns only to leave with an error.
fn hand_over_to_torch() -> ! {
    let torch = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(TORCH_BINARY),
        Err(e) => {
            eprintln!(
                "error: cannot find where stylize is installed, to start {TORCH_BINARY}: {e}"
            );
            stylize_cli::leave(1)
        }
    };
    let e = stylize_cli::exec_with_passive_openmp(&torch);
    eprintln!(
        "error: {}: {e}: this command runs the style network, which stylize leaves to \
         {TORCH_BINARY}; install the two binaries side by side",
        torch.display()
    );
    stylize_cli::leave(1)
}
