fn main() -> std::process::ExitCode {
    sealdrop::cli::main()
}
