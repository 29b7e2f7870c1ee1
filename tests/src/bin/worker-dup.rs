//! Test shim: the worker's `main_impl` under a name of the tests package, so tests find it.

fn main() -> std::process::ExitCode {
    worker::main_impl()
}
