//! Entry point of the `vm-system` binary: defers to `orchestrator::main_impl`.

fn main() -> std::process::ExitCode {
    orchestrator::main_impl()
}
