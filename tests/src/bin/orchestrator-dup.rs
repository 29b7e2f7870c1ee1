//! Test shim: the daemon/CLI `main_impl` under a name of the tests package, so tests find it.

fn main() -> std::process::ExitCode {
    orchestrator::main_impl()
}
