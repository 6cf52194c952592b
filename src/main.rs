fn main() -> std::process::ExitCode {
    peergrid::cli::main()
}
