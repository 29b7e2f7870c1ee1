//! Entry point of the `vm-system-worker` binary: defers to `worker::main_impl`.

fn main() -> std::process::ExitCode {
    worker::main_impl()
}
