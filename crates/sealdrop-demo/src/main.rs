fn main() -> std::process::ExitCode {
    sealdrop_demo::cli::main()
}
