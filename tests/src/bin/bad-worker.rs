//! Test-only worker program: a proxy to the real worker that breaks the protocol on request.

fn main() -> std::process::ExitCode {
    tests::bad_worker::main_impl()
}
